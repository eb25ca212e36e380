"""The console app's parts (Textual): what `hatui.app.HatuiApp` is made of, one job a module.

`sources` (where cluster views come from: etcd or a recording, and the editor's compare-and-swap
target), `messages` (what the threads post to the app), `cluster_state` (data in, what the app
keeps of it, rendering), `pollers` (/patroni, the leader's lease, the etcd probe), `write_actions`
(switchover, restart, edit-config...) and `commands` (the command palette). `hatui/app.py` is the
entry: it inherits the parts and holds the state, screens, lifetime and app-wide keys.

May import the model, the etcd adapter (`sources` and the lease poller), the REST client, the
screens and the widgets. Never imports `hatui.app` (which imports it), the CLI or the daemon; the
screens and the widgets never import it (a screen reaches the app through
`screens/console_app.ConsoleApp`).
"""
