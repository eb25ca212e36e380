"""Reusable console widgets (Textual): member table, lag sparkline, log panes, banner.

A widget renders the model (`hatui.cluster`) it is given; it never imports the etcd adapter, the
app or a screen.
"""
