"""The parameter names a PostgreSQL build accepts in postgresql.conf.

PostgreSQL refuses to start when its configuration file names a parameter it does not know, so a
typo in the cluster configuration (`shared_buffer: 1GB`) would keep every node down after its
next restart. The names come from the server binary itself (`postgres --describe-config`, which
runs without a data directory, as any user), so they match the installed version exactly.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess

from hatui.pgbin import find_bin_dir

log = logging.getLogger("hatui.config")

# Settings PostgreSQL accepts in postgresql.conf that `postgres --describe-config` does not list
# (developer and read-only ones; PostgreSQL 13-17). A daemon adds them to the server's own list.
NOT_DESCRIBED_GUCS = frozenset("""
allow_in_place_tablespaces allow_system_table_mods application_name backtrace_functions block_size
config_file data_checksums data_directory_mode debug_assertions debug_discard_caches
debug_io_direct debug_logical_replication_streaming debug_parallel_query force_parallel_mode
ignore_checksum_failure ignore_invalid_pages ignore_system_indexes in_hot_standby integer_datetimes
jit_debugging_support jit_dump_bitcode jit_expressions jit_profiling_support jit_tuple_deforming
lc_collate lc_ctype max_function_args max_identifier_length max_index_keys post_auth_delay
pre_auth_delay remove_temp_files_after_crash restrict_nonsystem_relation_kind segment_size
send_abort_for_crash send_abort_for_kill server_encoding server_version server_version_num
shared_memory_size shared_memory_size_in_huge_pages ssl_library trace_notify
trace_recovery_messages trace_sort transaction_deferrable transaction_isolation
transaction_read_only wal_block_size wal_consistency_checking wal_segment_size zero_damaged_pages
""".split())


@functools.lru_cache(maxsize=8)
def parameter_names(bin_dir: str | None = None) -> frozenset[str] | None:
    """Lower-case parameter names of the PostgreSQL in bin_dir (default: the one found the usual
    way); None when no server binary answers (then nothing is checked by name)."""
    try:
        postgres = os.path.join(find_bin_dir(bin_dir), "postgres")
        res = subprocess.run([postgres, "--describe-config"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.debug("no parameter list from the server binary: %s", exc)
        return None
    names = {line.split("\t", 1)[0].strip().lower() for line in res.stdout.splitlines() if "\t" in line}
    if res.returncode != 0 or len(names) < 100:
        return None
    return frozenset(names | NOT_DESCRIBED_GUCS)


def is_known(name: str, known: frozenset[str] | None) -> bool:
    """Names with a dot belong to extensions (PostgreSQL accepts them as placeholders)."""
    return known is None or "." in name or name.lower() in known
