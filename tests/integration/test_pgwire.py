"""The daemon's small PostgreSQL client (hatui/daemon/pgwire.py) against a real PostgreSQL 15:
the same rows as psycopg for the daemon's own queries, quoting, errors, and every password method."""

from __future__ import annotations

import psycopg
import pytest

from hatui.daemon import pgwire, queries

pytestmark = pytest.mark.integration


def local(pg, **kw) -> pgwire.Connection:
    return pgwire.connect(host=str(pg.socket_dir), port=pg.port, user="postgres", dbname="postgres",
                          connect_timeout=3, **kw)


def test_same_rows_as_psycopg_for_the_daemons_queries(pg) -> None:
    checks = [queries._STATE_SQL, queries._RECEIVER_SQL, queries._REPLICAS_SQL, queries._PENDING_SQL,
              "SELECT true, false, 7::int2, 8::int4, 9::int8, 1.5::float8, 1.25::numeric, 'x'::text, NULL::text,"
              " '2026-01-02 03:04:05.25+01'::timestamptz, '2026-01-02 03:04:05'::timestamp, 'a'::name, 42::oid, '0/3000060'::pg_lsn"]
    with psycopg.connect(pg.dsn, autocommit=True) as ref, local(pg) as conn:
        for query in checks:
            expected = ref.execute(query).fetchall()
            got = conn.execute(query).fetchall()
            assert got == [tuple(str(v) if isinstance(v, str) else v for v in row) for row in expected], query
            assert all(type(a) is type(b) for row_a, row_b in zip(got, expected, strict=True)
                       for a, b in zip(row_a, row_b, strict=True)), query


def test_quoting_errors_and_composition(pg) -> None:
    with local(pg) as conn:
        odd = "it's a \\ \"quoted\" ünïcode %s"
        assert conn.execute("SELECT %s, %s::int + 1, %s", (odd, 41, None)).fetchone() == (odd, 42, None)
        assert conn.execute("SELECT %s::text[]", (["a", 'b"c', "d\\e", None],)).fetchone() == ('{a,"b\\"c","d\\\\e",NULL}',)
        assert conn.execute("SELECT 100 %% %s", (7,)).fetchone() == (2,)
        with pytest.raises(pgwire.Error) as err:
            conn.execute("SELECT * FROM no_such_table")
        assert "no_such_table" in str(err.value) and err.value.sqlstate == "42P01"
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the session survives an error
        assert conn.execute("CREATE TABLE t (id int)").description is None
    role = 'we"ird role'
    assert queries.create_role(local(pg), role, "pa'ss", replication=True) is True
    assert queries.create_role(local(pg), role, "pa'ss") is False
    with local(pg) as conn:
        assert conn.execute("SELECT rolreplication FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (False,)


@pytest.mark.parametrize("method", ["scram-sha-256", "md5", "password"])
def test_password_methods_over_tcp(pg, method: str) -> None:
    user = f"u_{method.replace('-', '_')}"
    with local(pg) as conn:
        conn.execute(f"SET password_encryption = '{'md5' if method == 'md5' else 'scram-sha-256'}'")
        conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'sekret'")
        hba = pg.data_dir / "pg_hba.conf"
        conn.execute("SELECT pg_reload_conf()")
    text = hba.read_text()
    hba.write_text(f"host all {user} 127.0.0.1/32 {method}\n" + text)
    with local(pg) as conn:
        conn.execute("SELECT pg_reload_conf()")
    try:
        with pgwire.connect(host="127.0.0.1", port=pg.port, user=user, dbname="postgres", password="sekret",
                            connect_timeout=3) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
        with pytest.raises(pgwire.OperationalError) as err:
            pgwire.connect(host="127.0.0.1", port=pg.port, user=user, dbname="postgres", password="wrong")
        assert "password authentication failed" in str(err.value)
        with pytest.raises(pgwire.OperationalError, match="no password supplied"):
            pgwire.connect(host="127.0.0.1", port=pg.port, user=user, dbname="postgres")
    finally:
        hba.write_text(text)
