"""hatui: PostgreSQL high availability on etcd, compatible with Patroni, with a terminal console."""

__version__ = "0.1.0"
# The version we publish in member keys and /patroni. Real patronictl parses it as a
# dotted version and switches to legacy behaviour below 2.1.0, so it must look modern.
PATRONI_COMPAT_VERSION = "4.1.5"
