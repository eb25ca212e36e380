"""etcd over https through the JSON gateway: reads, writes, leases and watches.

The daemon and the console keep a watch open on the cluster prefix; with a TLS etcd (common in
production) the watch used to be refused outright, so both fell back to a re-read every second
with an error each time. The test starts its own etcd with a throwaway CA and server certificate
made in the test's temp dir.
"""

from __future__ import annotations

import datetime
import ipaddress
import queue
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hatui.etcd.store import ClusterWatcher, DCSError
from hatui.etcd.gateway import EtcdGateway
from servers import EtcdServer, free_ports, make_tempdir, remove_tree

pytestmark = pytest.mark.integration


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hatui test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_key_pem(key))
    paths[2].chmod(0o600)
    return paths


class TlsEtcd(EtcdServer):
    """One etcd member whose client port speaks https only."""

    def __init__(self, *args, ca: Path, cert: Path, key: Path, **kw) -> None:
        super().__init__(*args, **kw)
        self.ca, self.cert, self.key = ca, cert, key

    @property
    def client_url(self) -> str:
        return f"https://{self.endpoint}"

    def args(self) -> list[str]:
        return [*super().args(), "--cert-file", str(self.cert), "--key-file", str(self.key)]

    def healthy(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1, context=ctx) as r:
                return b'"true"' in r.read()
        except OSError:
            return False


@pytest.fixture
def tls_etcd() -> Iterator[TlsEtcd]:
    base = make_tempdir("hatui-etcd-tls-")
    server = None
    try:
        ca, cert, key = make_certificates(base)
        client_port, peer_port = free_ports(2)
        server = TlsEtcd("etcd-tls", base / "etcd", client_port, peer_port, ca=ca, cert=cert, key=key)
        server.start().wait_ready()
        yield server
    finally:
        if server is not None:
            server.stop()
        remove_tree(base)


def test_watch_over_https_sees_writes(tls_etcd: TlsEtcd) -> None:
    etcd = EtcdGateway([tls_etcd.client_url], ca_cert=str(tls_etcd.ca))
    try:
        assert etcd.scheme == "https"
        etcd.put("/service/tls/config", '{"ttl": 30}')
        rows, revision = etcd.get_prefix("/service/tls/")
        assert [r[0] for r in rows] == ["/service/tls/config"]
        lease = etcd.grant_lease(30)
        assert etcd.keepalive(lease) > 0

        batches: queue.Queue = queue.Queue()
        watch = etcd.watch_prefix("/service/tls/", revision + 1)

        def read() -> None:
            try:
                for rev, events in watch:
                    batches.put((rev, events))
            except DCSError as exc:
                batches.put(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        etcd.put("/service/tls/leader", "pg0", lease)
        etcd.delete("/service/tls/config")
        seen = []
        while len(seen) < 2:
            item = batches.get(timeout=30)
            assert not isinstance(item, Exception), item
            seen.extend((e.key, e.value, e.deleted) for e in item[1])
        assert seen == [("/service/tls/leader", b"pg0", False), ("/service/tls/config", b"", True)]
        watch.cancel()
        reader.join(timeout=10)
        assert not reader.is_alive()
    finally:
        etcd.close()


def test_cluster_watcher_over_https_follows_the_cluster_without_errors(tls_etcd: TlsEtcd) -> None:
    # What the daemon's leader-key watch and the console's live view run on.
    etcd = EtcdGateway([tls_etcd.client_url], ca_cert=str(tls_etcd.ca))
    views: queue.Queue = queue.Queue()
    errors: list[str] = []
    watcher = ClusterWatcher(etcd, "/service", "tls", views.put, errors.append).start()
    try:
        first = views.get(timeout=30)
        assert first.leader_name is None
        etcd.put("/service/tls/leader", "pg1")
        while True:
            view = views.get(timeout=30)
            if view.leader_name == "pg1":
                break
        assert errors == []
    finally:
        watcher.stop()
        etcd.close()


def test_an_unknown_ca_is_one_clear_error(tls_etcd: TlsEtcd, tmp_path: Path) -> None:
    other_ca, _, _ = make_certificates(tmp_path)
    etcd = EtcdGateway([tls_etcd.client_url], ca_cert=str(other_ca))
    try:
        with pytest.raises(DCSError, match="TLS error"):
            etcd.get_prefix("/service/")
        with pytest.raises(DCSError, match="TLS error"):
            next(iter(etcd.watch_prefix("/service/", 1)))
    finally:
        etcd.close()


def test_https_requests_share_one_connection_and_a_reconnect_resumes_the_tls_session(tls_etcd: TlsEtcd) -> None:
    etcd = EtcdGateway([tls_etcd.client_url], ca_cert=str(tls_etcd.ca))
    try:
        for i in range(10):
            etcd.put("/service/tls/config", str(i))
            assert etcd.get("/service/tls/config")[0] == str(i).encode()
        assert etcd.connections_opened == 1  # one TLS handshake for 20 requests
        etcd._drop_idle()  # as after a failure: the next call connects again
        assert etcd.get("/service/tls/config")[0] == b"9"
        assert etcd.connections_opened == 2
        (conn,) = etcd._idle[0]
        assert conn.sock.session_reused  # the second handshake resumed the first one's session
    finally:
        etcd.close()
