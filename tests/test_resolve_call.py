"""callqa.workspace.qa.resolve_call: a call by full id (an index lookup first), id prefix, file name or path."""

from __future__ import annotations

import pytest

from callqa import rowgen
from callqa.pipeline import store
from callqa.pipeline.store import StoreError
from callqa.workspace.qa import resolve_call


@pytest.fixture
def con(tmp_path):
    c = store.connect(tmp_path / "r.duckdb")
    rowgen.load_into(c, rowgen.generate(30, seed=5))
    yield c
    c.close()


def test_every_way_of_naming_a_call(con):
    cid, name, path = con.execute(
        "SELECT call_id, file_name, source_path FROM calls ORDER BY call_id LIMIT 1"
    ).fetchone()
    assert resolve_call(con, cid) == cid
    assert resolve_call(con, name) == cid
    assert resolve_call(con, path) == cid
    others = [r[0] for r in con.execute("SELECT call_id FROM calls WHERE call_id <> ?", [cid]).fetchall()]
    prefix = next(n for n in range(6, 64) if not any(o.startswith(cid[:n]) for o in others))
    assert resolve_call(con, cid[:prefix]) == cid
    with pytest.raises(StoreError, match="no stored call"):
        resolve_call(con, "no-such-call.wav")
    with pytest.raises(StoreError, match="no stored call"):
        resolve_call(con, cid[:5])  # a prefix needs 6 characters


def test_an_exact_id_wins_and_an_ambiguous_name_is_refused(con):
    a, b = (r[0] for r in con.execute("SELECT call_id FROM calls ORDER BY call_id LIMIT 2").fetchall())
    con.execute("UPDATE calls SET file_name = ? WHERE call_id = ?", [a, b])  # b's file is named like a's id
    assert resolve_call(con, a) == a
    con.execute("UPDATE calls SET file_name = 'same.wav' WHERE call_id IN (?, ?)", [a, b])
    with pytest.raises(StoreError, match="matches 2 calls"):
        resolve_call(con, "same.wav")
