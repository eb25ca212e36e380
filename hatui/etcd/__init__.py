"""The etcd adapter: the only part that knows key paths, leases, transactions and watches.

`store.py` holds the key paths, the `Etcd` interface every caller types against, `ClusterStore`'s
transactions and `ClusterWatcher`; `kv.py` is the client for key-value calls and transactions over
etcd's JSON gateway (http or https); `gateway.py` adds leases and watches. It may import the
model (`hatui.cluster`, `hatui.config`) and nothing else of hatui; the model, the widgets and the
screens never import it. No gRPC at run time.
"""
