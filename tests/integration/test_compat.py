"""Patroni settings that hatui used to accept and ignore (issue 14, item 4), against real servers:
libpq options in `authentication`, `pg_ident`, the `nostream` and `clonefrom` tags with `reinit`,
and `watchdog.mode: required`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from clusterkit import cluster_factory, crash_host, rest, slots_on, sql

pytestmark = pytest.mark.integration


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Iterator:
    yield from cluster_factory(request)


def test_libpq_options_pg_ident_nostream_clonefrom_and_required_watchdog(make, tmp_path) -> None:
    repl = {"username": "replicator", "password": "rep-pass", "sslmode": "disable", "channel_binding": "disable",
            "sslcert": str(tmp_path / "client.crt"), "sslkey": str(tmp_path / "client.key"),
            "sslrootcert": str(tmp_path / "root.crt")}
    auth = {"replication": repl, "superuser": {"username": "postgres", "password": "zalando"},
            "rewind": {"username": "postgres", "password": "zalando"}}
    extra = {
        # postgresql1: libpq options, a clone source, and a watchdog it requires but does not have.
        "postgresql1": {"postgresql.authentication": auth, "tags": {"clonefrom": True},
                        "watchdog": {"mode": "required", "device": str(tmp_path / "no-such-watchdog")}},
        # postgresql2: no WAL streaming (nostream), never a failover candidate, a user name map.
        "postgresql2": {"tags": {"nostream": True, "nofailover": True},
                        "postgresql.pg_ident": ["ops alice postgres", "ops bob postgres"]},
    }
    cluster = make(3, node_extra=extra, not_streaming=("postgresql2",))
    p0, p1, p2 = cluster.nodes

    # libpq options reach primary_conninfo and pg_basebackup.
    conninfo = sql(p1, "SHOW primary_conninfo")[0][0]
    for part in ("sslmode=disable", "channel_binding=disable", f"sslcert={tmp_path}/client.crt",
                 f"sslkey={tmp_path}/client.key", f"sslrootcert={tmp_path}/root.crt"):
        assert part in conninfo, conninfo
    assert f"channel_binding=disable sslcert={tmp_path}/client.crt" in p1.log_path.read_text()  # pg_basebackup

    # pg_ident: written and loaded by the server.
    assert sql(p2, "SELECT map_name, sys_name, pg_username FROM pg_ident_file_mappings ORDER BY line_number") == [
        ("ops", "alice", "postgres"), ("ops", "bob", "postgres")]
    # nostream: a replica with no primary_conninfo, no slot for it on the primary.
    assert sql(p2, "SELECT pg_is_in_recovery(), current_setting('primary_conninfo')") == [(True, "")]
    assert "postgresql2" not in slots_on(p0) and "postgresql1" in slots_on(p0)

    # reinit without --from-leader copies from the clonefrom member.
    log_before = len(p2.log_path.read_text())
    assert rest(p2, "POST", "/reinitialize", {}) == 200
    cluster.wait_for(lambda: "reinitialize finished" in p2.log_path.read_text()[log_before:] or
                     p2.patroni().get("state") == "running" and "pg_basebackup from" in
                     p2.log_path.read_text()[log_before:], 120, "the reinit of postgresql2")
    tail = p2.log_path.read_text()[log_before:]
    assert "reinitializing: removing the data directory and cloning from postgresql1" in tail
    assert f"cloning 127.0.0.1:{p1.pg_port} into" in tail

    # watchdog.mode required without a device: postgresql1 never takes the lock, even with the
    # leader gone (postgresql2 may not: nofailover), so the cluster stays without a leader.
    crash_host(p0)
    cluster.wait_for(lambda: "watchdog.mode is required but watchdog device" in p1.log_path.read_text(), 90,
                     "postgresql1 refusing the lock")
    time.sleep(3)
    assert cluster.leader() is None and cluster.etcd_get("/service/batman/leader") is None
    assert sql(p1, "SELECT pg_is_in_recovery()") == [(True,)]
