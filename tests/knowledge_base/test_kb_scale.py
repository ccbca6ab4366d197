"""The knowledge base at scale (issue 20): set-based publishing, the indexed attribute lookup
(schema 3) and the fast index validation, on SQLite and a real PostgreSQL. Costs are checked
by counting statements, never by timing."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import hashlib
import json
import random

import numpy as np
import pytest
from sqlalchemy import event, select, text

from sedna_core._strict_json import _STRING, CHUNK_BYTES, _string_spans, parse_json_in_slices
from sedna_core.clock import ManualClock
from sedna_core.errors import IndexValidationError
from sedna_core.knowledge_base import KnowledgeBaseDB, validate_index
from sedna_core.knowledge_base._db import _collector_paused
from sedna_core.knowledge_base._index import _fast_accepts, _validator
from sedna_core.knowledge_base._models import Sample, TaskGroup, TaskModel


def sha(text_: str) -> str:
    return hashlib.sha256(text_.encode()).hexdigest()


def index(groups, unseen=()):
    return {
        "schema": "sedna.lifelong.task_index",
        "schema_version": 1,
        "create_time": 1.0,
        "seen_task": {"task_groups": list(groups)},
        "unseen_task": {"task_groups": list(unseen)},
    }


def group(i, attrs=None, model="m", tasks=1, samples=True):
    return {
        "entry": f"g{i}",
        "tasks": [
            {
                "entry": f"t{i}-{k}",
                "task_id": i * 10 + k,
                "sample_num": 5,
                "meta_attr": {"site": f"s{i}", "region": f"r{i % 3}"} if attrs is None else attrs,
                **(
                    {"samples": {"name": f"s{i}.csv", "sha256": sha(f"s{i}"), "format": "csv"}}
                    if samples
                    else {}
                ),
            }
            for k in range(tasks)
        ],
        "model": {"name": f"g{i}.npy", "sha256": sha(f"{model}{i}"), "format": "npy"},
    }


@pytest.fixture
def db(db_url):
    db = KnowledgeBaseDB(db_url, clock=ManualClock())
    db.upgrade()
    yield db
    db.close()


def count_statements(db):
    seen = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_ll_publishing_many_tasks_takes_a_bounded_number_of_statements(db):
    statements = count_statements(db)
    db.publish(index([group(i) for i in range(1200)]))
    first = len(statements)
    # a few statements per table and per 500 names, not a few per task
    assert first < 60, first
    counts = db.counts()
    assert counts["ll_tasks"] == counts["ll_task_grp"] == counts["ll_task_models"] == 1200
    assert counts["ll_samples"] == counts["ll_task_sample"] == 1200
    statements.clear()
    db.publish(index([group(i) for i in range(1200)]))  # the same knowledge again
    assert len(statements) < 60, len(statements)
    assert db.counts()["ll_task_models"] == 1200 and db.counts()["ll_samples"] == 1200


def test_ll_attribute_queries_look_up_the_index_and_compare_full_values(db):
    long_value = "x" * 300
    groups = [group(i) for i in range(30)]
    groups.append(group(30, attrs={"site": long_value, "n": 3, "flag": True, "none": None}))
    groups.append(group(31, attrs={"site": long_value + "y", "n": 3.0}))
    db.publish(index(groups))
    assert [r["task"] for r in db.query({"site": "s7"})] == ["t7-0"]
    assert {r["task"] for r in db.query({"region": "r1"})} == {f"t{i}-0" for i in range(1, 30, 3)}
    assert [r["task"] for r in db.query({"region": "r1", "site": "s4"})] == ["t4-0"]
    assert db.query({"region": "r1", "site": "s5"}) == []
    # values are compared as text, in full (the index keeps a 200-character prefix)
    assert [r["task"] for r in db.query({"site": long_value})] == ["t30-0"]
    assert [r["task"] for r in db.query({"n": 3})] == ["t30-0"]
    assert [r["task"] for r in db.query({"n": "3.0"})] == ["t31-0"]
    assert [r["task"] for r in db.query({"flag": True, "none": None})] == ["t30-0"]
    assert db.query({"missing": "x"}) == []
    row = db.query({"site": "s7"})[0]
    assert row["model"]["sha256"] == sha("m7") and row["model_versions"] == 1


def test_ll_republishing_replaces_attributes_models_and_relations(db):
    db.publish(index([group(1, tasks=2), group(2)]))
    changed = group(1, attrs={"site": "moved"}, model="retrained", tasks=2)
    db.publish(index([changed, group(2)]))
    assert db.query({"site": "s1"}) == []
    moved = db.query({"site": "moved"})
    assert [r["task"] for r in moved] == ["t1-0", "t1-1"]
    assert moved[0]["model_versions"] == 2 and moved[0]["model"]["version"] == 2
    assert moved[0]["model"]["sha256"] == sha("retrained1")
    # back to the first model: no new version, it is current again
    db.publish(index([group(1, tasks=2), group(2)]))
    row = db.query({"site": "s1"})[0]
    assert row["model_versions"] == 2 and row["model"]["sha256"] == sha("m1")
    with db.engine.connect() as conn:
        radios = conn.execute(text("SELECT transfer_radio FROM ll_task_relation")).scalars()
        assert sorted(radios) == [0.5, 0.5, 1.0]
        current = conn.execute(
            text("SELECT count(*) FROM ll_task_models WHERE is_current = :t"), {"t": True}
        ).scalar()
        assert current == 2
    # a withdrawn group is filtered in the database
    db.set_deploy(["g2"], False)
    assert [r["task"] for r in db.query(deployed=False)] == ["t2-0"]
    assert len(db.query(deployed=True)) == 2


def test_ll_a_task_in_both_sections_keeps_one_row_and_two_relations(db):
    seen = group(1)
    unseen = copy.deepcopy(seen)
    unseen["tasks"][0]["meta_attr"] = {"site": "later"}
    db.publish(index([seen], unseen=[unseen]))
    rows = db.query({"site": "later"})  # the last listing's attributes win, as before
    assert sorted(r["group"] for r in rows) == ["g1", "unseen-g1"]
    assert db.counts()["ll_tasks"] == 1


def test_ll_fast_index_validation_agrees_with_the_schema():
    base = index([group(1)])
    task = ("seen_task", "task_groups", 0, "tasks", 0)

    def at(doc, path):
        for key in path:
            doc = doc[key]
        return doc

    def mutated(path, key, value):
        doc = copy.deepcopy(base)
        at(doc, path)[key] = value
        return doc

    wrong = [
        mutated(task, "task_id", True),
        mutated(task, "task_id", 1.5),
        mutated(task, "meta_attr", {"a": {}}),
        mutated(("seen_task", "task_groups", 0, "model"), "sha256", "A" * 64),
        mutated(("seen_task", "task_groups", 0, "model"), "name", ".hidden"),
        mutated(("seen_task", "task_groups", 0), "tasks", []),
        mutated((), "extra", 1),
        mutated((), "version", 0),
        mutated((), "create_time", True),
    ]
    assert _fast_accepts(base) and not list(_validator().iter_errors(base))
    for doc in wrong:
        assert not _fast_accepts(doc)
        assert list(_validator().iter_errors(doc))
        with pytest.raises(IndexValidationError):
            validate_index(doc)


def test_ll_republishing_unchanged_knowledge_writes_no_rows(db):
    db.publish(index([group(i) for i in range(50)]))
    statements = count_statements(db)
    db.publish(index([group(i) for i in range(50)]))
    writes = [s for s in statements if not s.lstrip().upper().startswith("SELECT")]
    assert [w.split()[0:3] for w in writes] == [["INSERT", "INTO", "kb_index"]]
    statements.clear()
    changed = [group(i) for i in range(50)]
    changed[7]["deployed"] = False
    db.publish(index(changed))
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1 and "ll_task_grp" in updates[0]
    assert [r["deployed"] for r in db.query({"site": "s7"})] == [False]


def test_ll_a_query_is_one_statement_whatever_it_matches(db):
    groups = [group(i) for i in range(30)]
    groups[4]["model"] = None
    db.publish(index(groups))
    db.publish(index([group(i, model="v2") for i in range(3)]))  # a second model version
    statements = count_statements(db)
    rows = db.query({"region": "r1"})
    assert len(statements) == 1 and len(rows) == 10
    statements.clear()
    assert db.query({"region": "r1"}, deployed=True, group="g4")[0]["model"] is None
    assert len(statements) == 1
    row = db.query({"site": "s1"}, task="t1-0")[0]
    assert row["model_versions"] == 2 and row["model"]["version"] == 2
    assert row["model"]["sha256"] == sha("v21") and row["task_attr"] == {
        "site": "s1",
        "region": "r1",
    }


def test_ll_a_large_publish_refreshes_postgresql_planner_statistics(db):
    statements = count_statements(db)
    db.publish(index([group(i) for i in range(20)]))  # small: autovacuum's job
    assert not [s for s in statements if s.startswith("ANALYZE")]
    db.publish(index([group(i) for i in range(20, 1220)]))
    analyzed = [s for s in statements if s.startswith("ANALYZE")]
    expected = 1 if db.engine.dialect.name == "postgresql" else 0
    assert len(analyzed) == expected and all("kb_task_attr" in s for s in analyzed)


def test_ll_rows_written_through_the_driver_read_back_with_their_types(db):
    """Bulk rows skip SQLAlchemy's per-row parameter processing: each column's bind processor
    (SQLite stores datetimes as text) and the columns' defaults must still apply."""
    db.clock.advance(1234.5)
    first = db._now()
    assert first.microsecond == 500000
    db.publish(index([group(i) for i in range(3)]))
    with db._sessions() as s:
        grp = s.scalar(select(TaskGroup).where(TaskGroup.name == "g1"))
        assert grp.created_at == first
        assert grp.deploy is True and grp.task_num == 1 and grp.sample_num == 5
        model = s.scalar(select(TaskModel).where(TaskModel.task_id == grp.id))
        assert model.is_current is True and model.version == 1 and model.metrics == "{}"
        assert model.model_url == "" and model.created_at == grp.created_at
        sample = s.scalar(select(Sample).where(Sample.sha256 == sha("s1")))
        assert sample.updated_at == grp.created_at and sample.data_type == 0
    # a republish that changes one group updates only that row, keeping the types
    db.clock.advance(60)
    changed = group(1)
    changed["deployed"] = False
    db.publish(index([group(0), changed, group(2)]))
    with db._sessions() as s:
        stamps = dict(s.execute(select(TaskGroup.name, TaskGroup.updated_at)).all())
        assert stamps["g1"] == first + dt.timedelta(seconds=60)
        assert stamps["g0"] == stamps["g2"] == first
        assert s.scalar(select(TaskGroup.deploy).where(TaskGroup.name == "g1")) is False


@pytest.mark.parametrize("enabled", [True, False])
def test_ll_publishing_pauses_the_garbage_collector_and_restores_it(db, enabled):
    during = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: during.append(gc.isenabled()))
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        db.publish(index([group(i) for i in range(3)]))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    # the writes ran with it paused (the version lookup and commit are part of them)
    assert during and not any(during)


def test_ll_concurrent_publishes_share_one_collector_pause():
    was = gc.isenabled()
    gc.enable()
    try:
        with _collector_paused():
            with _collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the other publish is still writing
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_ll_a_large_index_decodes_as_json_loads_decodes_it():
    """The server decodes a large index in slices: the strings found without a regex (no
    backslash in the document) and with one (escapes, non-ASCII) give the same document."""
    plain = index([group(i) for i in range(200)])
    escaped = copy.deepcopy(plain)
    escaped["seen_task"]["task_groups"][7]["tasks"][0]["meta_attr"] = {
        "quote": 'a "b", [c]: {d}',
        "path": "C:\\data\\",
        "name": "été",
    }
    for doc in (plain, escaped):
        raw = json.dumps(doc).encode()
        assert len(raw) > CHUNK_BYTES
        assert (b"\\" in raw) is (doc is escaped)
        assert parse_json_in_slices(raw) == json.loads(raw)


def test_ll_strings_found_without_a_regex_are_the_regex_matches():
    rng = random.Random(20)
    for _ in range(2000):
        raw = bytes(rng.choice(b'ab"{}[],: \n') for _ in range(rng.randint(0, 40)))
        starts, ends = _string_spans(raw, np.frombuffer(raw, dtype=np.uint8))
        spans = [m.span() for m in _STRING.finditer(raw)]
        assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == spans, raw
