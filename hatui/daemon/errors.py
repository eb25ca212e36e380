"""Exceptions the daemon's parts share (here, so the loop's parts need not import the loop)."""


class FatalError(Exception):
    """The daemon must stop (e.g. the data dir belongs to another cluster)."""
