"""The daemon (`hatui daemon node.yml`): one per PostgreSQL server.

Owns the HA core (`ha.decide`, pure), the loop that observes, decides and acts (`loop.Daemon`),
PostgreSQL process control and SQL (`postgres`, composed of the `pg_*` parts, and `queries`), the
REST API (`api` and its endpoint mixins `api_reads`/`api_writes`, the pure `api_rules*`,
`api_backend` over the `requests.DaemonPort` interface), synchronous replication, failsafe and the
fencing guard. May import the model (`hatui.cluster`, `hatui.config`) and the etcd adapter
(`hatui.etcd.store`, `hatui.etcd.kv`, `hatui.etcd.gateway`); never Textual or the console.
"""
