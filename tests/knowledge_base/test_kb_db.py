"""The knowledge base's database layer on SQLite and a real PostgreSQL: schema creation,
upgrade from Sedna's schema (version 1), publishing, status updates and queries."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from sedna_core.clock import ManualClock
from sedna_core.errors import KnowledgeBaseError
from sedna_core.knowledge_base import SCHEMA_VERSION, IndexValidationError, KnowledgeBaseDB

SHA_A = "a" * 64
SHA_B = "b" * 64


def index(groups, **extra):
    return {
        "schema": "sedna.lifelong.task_index",
        "schema_version": 1,
        "create_time": 1.0,
        "job": "demo",
        "seen_task": {"task_groups": groups},
        "unseen_task": {"task_groups": []},
        **extra,
    }


def group(entry, task_id, attrs, sha=SHA_A, **extra):
    return {
        "entry": entry,
        "sample_num": 10,
        "tasks": [{"entry": entry, "task_id": task_id, "meta_attr": attrs, "sample_num": 10}],
        "model": {
            "name": f"{entry}.skops",
            "sha256": sha,
            "format": "skops",
            "metrics": {"acc": 0.9},
        },
        **extra,
    }


def test_ll_empty_database_is_created_at_current_version(db_url):
    db = KnowledgeBaseDB(db_url)
    assert db.schema_version() is None
    assert db.upgrade() == (None, SCHEMA_VERSION)
    assert db.schema_version() == SCHEMA_VERSION
    assert db.upgrade() == (SCHEMA_VERSION, SCHEMA_VERSION)  # idempotent
    db.close()


def test_ll_upgrade_from_sedna_schema_keeps_rows(db_url, build_sedna_v1_db):
    build_sedna_v1_db(db_url)
    db = KnowledgeBaseDB(db_url, clock=ManualClock())
    assert db.schema_version() == 1
    with pytest.raises(KnowledgeBaseError, match="sedna kb upgrade"):
        db.ensure_current()
    assert db.upgrade() == (1, SCHEMA_VERSION)
    db.ensure_current()
    counts = db.counts()
    assert counts["ll_task_grp"] == 2 and counts["ll_task_models"] == 3
    assert counts["ll_samples"] == 2 and counts["kb_index"] == 0
    rows = {r["task"]: r for r in db.query()}
    assert set(rows) == {"summer_berlin", "winter_paris"}
    summer = rows["summer_berlin"]
    # Sedna's accumulated counter is recounted; its two models are versions 1 and 2, the newer
    # current; the attribute list is queryable by position
    assert summer["model_versions"] == 2
    assert summer["model"]["version"] == 2 and summer["model"]["format"] == "pkl"
    assert summer["task_attr"] == {"0": "summer", "1": "berlin"}
    assert [r["task"] for r in db.query({"1": "paris"})] == ["winter_paris"]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT task_num FROM ll_task_grp WHERE id = 1")).scalar() == 1
        types = conn.execute(text("SELECT data_type FROM ll_samples ORDER BY id")).scalars().all()
        assert [int(t) for t in types] == [0, 0]
    # the upgraded database takes new knowledge next to the old
    db.publish(index([group("summer_berlin", 0, {"season": "summer"}, sha=SHA_B)]))
    summer = db.query(task="summer_berlin")[0]
    assert summer["model"]["version"] == 3 and summer["model"]["sha256"] == SHA_B
    db.close()


def test_ll_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    db = KnowledgeBaseDB(url)
    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE kb_schema SET version = 99"))
    with pytest.raises(KnowledgeBaseError, match="newer than this sedna-core"):
        db.upgrade()


def test_ll_publish_query_and_status_are_committed(db_url):
    db = KnowledgeBaseDB(db_url)
    db.upgrade()
    groups = [
        group("summer_berlin", 0, {"season": "summer", "city": "berlin"}),
        group("winter_paris", 1, {"season": "winter", "city": "paris"}, sha=SHA_B),
    ]
    assert db.publish(index(groups))["version"] == 1
    assert db.publish(index(groups))["version"] == 2
    counts = db.counts()
    assert counts["ll_task_grp"] == 2 and counts["ll_task_models"] == 2  # same model: no copy
    assert [r["task"] for r in db.query({"season": "summer"})] == ["summer_berlin"]
    assert db.query({"season": "summer", "city": "paris"}) == []
    result = db.set_deploy(["winter_paris", "nope"], False, reason="score < 0.5")
    assert result == {"version": 3, "updated": ["winter_paris"], "unknown": ["nope"]}
    db.close()
    # a new connection (a restarted server) sees the committed status and history
    db = KnowledgeBaseDB(db_url)
    assert db.query(task="winter_paris")[0]["deployed"] is False
    assert db.query(deployed=True)[0]["task"] == "summer_berlin"
    assert db.deployments() == [
        {"group": "winter_paris", "deploy": False, "index_version": 3, "reason": "score < 0.5"}
    ]
    latest = db.get_index()
    assert latest["version"] == 3
    assert latest["seen_task"]["task_groups"][1]["deployed"] is False
    assert json.loads(json.dumps(latest)) == latest
    db.close()


def test_ll_publish_rejects_malformed_index(tmp_path):
    db = KnowledgeBaseDB(f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    db.upgrade()
    bad = index([group("a", 0, {})])
    bad["seen_task"]["task_groups"][0]["model"]["sha256"] = "../../etc/passwd"
    with pytest.raises(IndexValidationError, match=r"seen_task/task_groups/0/model/sha256"):
        db.publish(bad)
    dup = index([group("a", 0, {}), group("b", 0, {})])
    with pytest.raises(IndexValidationError, match="task_id 0 used twice"):
        db.publish(dup)
    assert db.latest_version() is None
