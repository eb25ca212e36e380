"""etcd's own 404 answers are reported as they are (hatui/etcd/kv.py), not as a missing JSON API.

A put on a revoked lease (what a frozen daemon does after its fencing guard revoked its lease)
gets HTTP 404 "etcdserver: requested lease not found" from the gateway; the log used to say "no etcd
v3 JSON API found (is this an etcd >= 3.2 client port?)", which sent operators the wrong way.
"""

from __future__ import annotations

import pytest

from hatui.etcd.gateway import EtcdGateway
from hatui.etcd.kv import EtcdHttp
from hatui.etcd.store import DCSError

pytestmark = pytest.mark.integration


def test_put_on_a_revoked_lease_says_the_lease_is_gone(etcd) -> None:
    gw = EtcdGateway([etcd.endpoint])
    lease = gw.grant_lease(30)
    gw.request("/lease/revoke", {"ID": str(lease)}, "lease revoke")
    e = EtcdHttp([etcd.endpoint])
    with pytest.raises(DCSError) as err:
        e.put("/service/batman/members/x", "{}", lease)
    assert "lease not found" in str(err.value)
    assert "JSON API" not in str(err.value)
    e.put("/service/batman/members/x", "{}")  # the client still works: the API prefix was right
    assert e.get("/service/batman/members/x")[0] == b"{}"
    e.close()
    gw.close()
