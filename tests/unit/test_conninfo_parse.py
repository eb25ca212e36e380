"""pg_conf.parse_conninfo reads keyword=value conninfo as libpq does, so the daemon needs no libpq
(psycopg, about 16 MB resident once imported) to take the password out of pg_rewind's source
string. libpq itself, through psycopg, is the oracle."""

from __future__ import annotations

import psycopg.conninfo
from hypothesis import given
from hypothesis import strategies as st

from hatui.daemon.pg_conf import make_conninfo, parse_conninfo

KEYS = st.sampled_from(["host", "port", "user", "password", "dbname", "sslmode", "sslcert", "application_name"])
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=20)


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_what_make_conninfo_writes_reads_back_as_libpq_reads_it(params) -> None:
    text = make_conninfo(**params)
    assert parse_conninfo(text) == params == dict(psycopg.conninfo.conninfo_to_dict(text))


def test_hand_written_forms() -> None:
    for text in ("host=127.0.0.1 port=5432", "  host = 127.0.0.1\tport=5432  ", r"password='a b\'c' user=x",
                 r"password=a\ b dbname=''", "host="):
        assert parse_conninfo(text) == dict(psycopg.conninfo.conninfo_to_dict(text)), text


def test_what_it_does_not_read_is_left_to_libpq() -> None:
    assert parse_conninfo("postgresql://u@127.0.0.1:5432/db") is None
    assert parse_conninfo("host=a'b") is None
    assert parse_conninfo("host") is None
