"""The knowledge base at scale (issue 20): set-based publishing, the indexed attribute lookup
(schema 3) and the fast index validation, on SQLite and a real PostgreSQL. Costs are checked
by counting statements, never by timing."""

from __future__ import annotations

import copy
import hashlib

import pytest
from sqlalchemy import event, text

from sedna_core.clock import ManualClock
from sedna_core.errors import IndexValidationError
from sedna_core.knowledge_base import KnowledgeBaseDB, validate_index
from sedna_core.knowledge_base._index import _fast_accepts, _validator


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
