"""The CLI: patronictl's verbs (`list`, `edit-config`, `switchover`, ...) plus `hatui daemon`, `demo`
and the console's entry, all on the same etcd keys and REST API as Patroni.

`main.py` holds the click group and the list of verbs; their options are declared by family in
`read_verbs.py`, `action_verbs.py`, `connect_verbs.py` and `run_verbs.py` (with `group.py`, the
one-line errors, and `params.py`, the shared arguments); the verbs' work lives in `actions.py`
(REST calls on members), `edit.py` (show/edit the cluster config), `explain.py` (events, why),
`standby.py` (standby-cluster role changes), `validate.py`; `common.py` is what every verb shares
and `ctlconfig.py` where the CLI finds etcd and credentials. It may import the model, the etcd
adapter, `views.py` for rendering and the REST client; Textual and psycopg only inside the verbs
that need them, so `hatui list` starts fast. Nothing outside the CLI imports it.
"""

from .main import cli, main

__all__ = ["cli", "main"]
