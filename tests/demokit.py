"""A running demo cluster for the tests that drive one (the console's and the fault suite's).

Its own module name: tests/faults, tests/hosts and tests/tui each have a `conftest` of their own,
and a test collected with another folder's would import the wrong one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from servers import make_tempdir, remove_tree

from hatui.demo import DemoRuntime, same_process


@contextmanager
def running_demo(prefix: str, **kw) -> Iterator[DemoRuntime]:
    """The demo's etcd, monitor and two nodes (DemoRuntime keyword arguments in `kw`), the replica
    streaming; afterwards stopped, and every process it had is checked gone by PID."""
    base = make_tempdir(prefix)
    rt = DemoRuntime(base / "demo", nodes=2, port_base=0, **kw)
    try:
        rt.acquire()
        rt.build()
        rt.start_etcd()
        rt.start_monitor()
        assert rt.start_nodes()
        assert rt.wait_streaming(), "the replica never streamed"
        yield rt
    finally:
        status = rt.status() if rt.cluster is not None else {"pids": {}}
        rt.stop()
        for pids in status["pids"].values():
            for pid, started in pids:
                assert not same_process(pid, started), f"pid {pid} survived the demo's stop"
        remove_tree(base)
