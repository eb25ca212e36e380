"""The console's screens (Textual), one per file.

A screen renders what the app holds and turns keys into app calls through the narrow
`console_app.ConsoleApp` interface; it never imports `hatui.app` (`demo_panel.DemoApp`, which
extends the app, is the one module here that does) and never talks to etcd or to a node itself.
May import the model, `hatui.views` and the widgets.
"""
