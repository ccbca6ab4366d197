"""The knowledge base's database: SQLAlchemy 2 sessions over any SQLAlchemy URL.

Every write happens in one transaction that is committed before the call returns (Sedna never
committed its status updates). The server calls these methods from a worker thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import importlib.util
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import ConfigError, KnowledgeBaseError
from sedna_core.knowledge_base._index import iter_artifacts, validate_index
from sedna_core.knowledge_base._migrations import detect_version, upgrade
from sedna_core.knowledge_base._models import (
    SCHEMA_VERSION,
    Deployment,
    FileRecord,
    IndexVersion,
    Sample,
    Task,
    TaskAttr,
    TaskGroup,
    TaskModel,
    TaskRelation,
    TaskSample,
    attr_keys,
    parse_task_attr,
)
from sedna_core.log import get_logger

__all__ = ["KnowledgeBaseDB", "normalise_db_url"]

log = get_logger(__name__)


def normalise_db_url(url: str) -> str:
    """``url`` with a driver SQLAlchemy can load here (``postgresql://`` -> psycopg 3 when
    psycopg2 is absent)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError("KB_URL", url, "an SQLAlchemy database URL") from exc
    if parsed.drivername in ("postgresql", "postgres") and (
        importlib.util.find_spec("psycopg2") is None
        and importlib.util.find_spec("psycopg") is not None
    ):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


_collector_lock = threading.Lock()
_collector_pausers = 0
_collector_was_enabled = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """CPython's cyclic garbage collector paused while an index is written: a 10k-task publish
    allocates about a million short-lived containers (none in reference cycles, so reference
    counting frees them), and the full collections they trigger walk the server's whole heap,
    a fifth of the publish's time. Concurrent publishes share one pause; the collector resumes
    (as it was) when the last one ends."""
    global _collector_pausers, _collector_was_enabled
    with _collector_lock:
        if _collector_pausers == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pausers += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pausers -= 1
            if _collector_pausers == 0 and _collector_was_enabled:
                gc.enable()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class KnowledgeBaseDB:
    """Tasks, groups, models, samples, relations, deployments and published indexes.

    Parameters
    ----------
    url
        Any SQLAlchemy URL (``sqlite:///kb.sqlite3``, ``postgresql://user@host/db``...).
    clock
        Source of the timestamps written to the rows.
    """

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = normalise_db_url(url)
        self.clock = clock or SystemClock()
        self.engine = self._engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._queries: dict[tuple[int, bool, bool, bool], Any] = {}

    @staticmethod
    def _engine(url: str) -> Engine:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.time(), tz=dt.UTC).replace(tzinfo=None)

    # -- schema ------------------------------------------------------------------------------

    def schema_version(self) -> int | None:
        """The database's schema version (None when it has no knowledge-base tables)."""
        with self.engine.connect() as conn:
            return detect_version(conn)

    def upgrade(self) -> tuple[int | None, int]:
        """Create or upgrade the schema to the current version; ``(before, after)``."""
        return upgrade(self.engine, self._now())

    def ensure_current(self) -> None:
        """Raise unless the schema is the current one (the server upgrades on start)."""
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"database schema version is {version}, expected {SCHEMA_VERSION}: run "
                "`sedna kb upgrade` (or start `sedna serve kb`, which upgrades)"
            )

    def close(self) -> None:
        self.engine.dispose()

    # -- files -------------------------------------------------------------------------------

    def record_file(self, *, name: str, version: str, sha256: str, size: int, fmt: str) -> None:
        with self._sessions.begin() as s:
            s.add(
                FileRecord(
                    name=name,
                    version=version,
                    sha256=sha256,
                    size=size,
                    format=fmt,
                    created_at=self._now(),
                )
            )

    def file_record(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        """The committed record of a file (its latest version when ``version`` is None)."""
        with self._sessions() as s:
            stmt = select(FileRecord).where(FileRecord.name == name)
            if version is not None:
                stmt = stmt.where(FileRecord.version == version)
            rows = s.scalars(stmt).all()
            if not rows:
                return None
            row = max(rows, key=lambda r: int(r.version))  # versions are text: compare numbers
            return {"name": row.name, "version": row.version, "sha256": row.sha256}

    def has_digest(self, sha256: str) -> bool:
        """Whether a committed file has this content."""
        with self._sessions() as s:
            return (
                s.scalar(select(FileRecord.id).where(FileRecord.sha256 == sha256).limit(1))
                is not None
            )

    def committed_digests(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` a committed file has (one query per few hundred digests)."""
        t = FileRecord.__table__
        with self.engine.connect() as conn:
            rows = _select_in(conn, select(t.c.sha256), t.c.sha256, sorted(set(digests)))
        return {digest for (digest,) in rows}

    def file_versions(self) -> set[tuple[str, str]]:
        """``(name, version)`` of every committed file."""
        with self._sessions() as s:
            return {(n, v) for n, v in s.execute(select(FileRecord.name, FileRecord.version))}

    def files(self) -> list[dict[str, Any]]:
        with self._sessions() as s:
            rows = s.scalars(select(FileRecord).order_by(FileRecord.id)).all()
            return [
                {
                    "name": r.name,
                    "version": r.version,
                    "sha256": r.sha256,
                    "size": r.size,
                    "format": r.format,
                }
                for r in rows
            ]

    # -- indexes -----------------------------------------------------------------------------

    def latest_version(self) -> int | None:
        with self._sessions() as s:
            return s.scalar(select(func.max(IndexVersion.version)))

    def get_index(self, version: int | None = None) -> dict[str, Any] | None:
        """A published index (the latest when ``version`` is None), or None."""
        with self._sessions() as s:
            if version is None:
                version = s.scalar(select(func.max(IndexVersion.version)))
                if version is None:
                    return None
            row = s.get(IndexVersion, int(version))
            return None if row is None else json.loads(row.body)

    def index_body(self, version: int | None = None) -> tuple[int, str, str] | None:
        """``(version, JSON text, its sha256)`` of a published index (the latest when
        ``version`` is None), as stored: served without decoding and re-encoding it."""
        t = IndexVersion.__table__
        if version is None:
            version_of = select(func.max(t.c.version)).scalar_subquery()
        else:
            version_of = bindparam("version", int(version))
        stmt = select(t.c.version, t.c.body, t.c.sha256).where(t.c.version == version_of)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (int(row[0]), row[1], row[2])

    def publish(self, doc: Mapping[str, Any], *, job: str | None = None) -> dict[str, Any]:
        """Validate ``doc``, record its tasks, groups, models and samples, and store it as the
        next index version (returned with ``version`` set), all in one transaction."""
        return self.publish_valid(validate_index(doc), job=job)

    def publish_valid(self, doc: Mapping[str, Any], *, job: str | None = None) -> dict[str, Any]:
        """:meth:`publish` for a document :func:`validate_index` already accepted (the server
        validates every index it receives once, before its artifact check)."""
        for attempt in range(3):
            try:
                with _collector_paused(), self._sessions.begin() as s:
                    published = self._publish(s, dict(doc), job)
                    inserted = s.info.pop("inserted_rows", 0)
            except SQLIntegrityError:  # another server process took the version: retry
                if attempt == 2:
                    raise
            else:
                if inserted >= _ANALYZE_AFTER_ROWS:
                    self._analyze()
                return published
        raise AssertionError("unreachable")  # pragma: no cover

    def _analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics after a large publish: without them it
        plans the query over freshly loaded tables with hash joins over whole tables (a 100-row
        query took 37 ms at 10k tasks instead of 2.5 ms) until autovacuum gets to them."""
        if self.engine.dialect.name != "postgresql":
            return  # SQLite's planner uses the indexes without statistics
        tables = (Task, TaskGroup, TaskRelation, TaskModel, TaskAttr, TaskSample, Sample)
        with self.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE " + ", ".join(t.__tablename__ for t in tables))
            conn.commit()

    def _publish(self, s: Session, doc: dict[str, Any], job: str | None) -> dict[str, Any]:
        now = self._now()
        version = (s.scalar(select(func.max(IndexVersion.version))) or 0) + 1
        doc["version"] = version
        listed = [
            (self._group_name(section, group["entry"]), group)
            for section in ("seen_task", "unseen_task")
            for group in doc[section]["task_groups"]
        ]
        if listed:
            writer = _IndexWriter(s.connection(), now)
            writer.write(listed)
            s.info["inserted_rows"] = writer.inserted
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        s.add(
            IndexVersion(
                version=version,
                body=body,
                sha256=hashlib.sha256(body.encode()).hexdigest(),
                job=job or doc.get("job"),
                created_at=now,
            )
        )
        s.flush()
        return doc

    @staticmethod
    def _group_name(section: str, entry: str) -> str:
        return entry if section == "seen_task" else f"unseen-{entry}"[:100]

    def referenced_digests(self, doc: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(path, sha256)`` of every artifact ``doc`` refers to (for existence checks)."""
        return [(path, ref["sha256"]) for path, ref in iter_artifacts(doc)]

    # -- deployment status -------------------------------------------------------------------

    def set_deploy(
        self, groups: Sequence[str], deploy: bool, *, reason: str = ""
    ) -> dict[str, Any]:
        """Mark task groups (by entry) deployed or not, publish the index version that says so,
        and record the change; committed before returning."""
        with self._sessions.begin() as s:
            latest = s.scalar(select(func.max(IndexVersion.version)))
            if latest is None:
                raise KnowledgeBaseError("no task index is published yet; train a job first")
            doc = json.loads(s.get(IndexVersion, latest).body)  # type: ignore[union-attr]
            wanted = {g.strip() for g in groups if g.strip()}
            known = {g["entry"] for g in doc["seen_task"]["task_groups"]}
            changed = sorted(wanted & known)
            for group in doc["seen_task"]["task_groups"]:
                if group["entry"] in wanted:
                    group["deployed"] = bool(deploy)
            published = self._publish(s, doc, None) if changed else doc
            now = self._now()
            for name in changed:
                grp = s.scalar(select(TaskGroup).where(TaskGroup.name == name))
                if grp is not None:
                    s.add(
                        Deployment(
                            grp_id=grp.id,
                            deploy=bool(deploy),
                            index_version=published["version"],
                            reason=reason,
                            created_at=now,
                        )
                    )
            return {
                "version": published["version"],
                "updated": changed,
                "unknown": sorted(wanted - known),
            }

    def deployments(self, group: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as s:
            stmt = select(Deployment, TaskGroup.name).join(
                TaskGroup, TaskGroup.id == Deployment.grp_id
            )
            if group is not None:
                stmt = stmt.where(TaskGroup.name == group)
            rows = s.execute(stmt.order_by(Deployment.id)).all()
            return [
                {
                    "group": name,
                    "deploy": d.deploy,
                    "index_version": d.index_version,
                    "reason": d.reason,
                }
                for d, name in rows
            ]

    # -- queries -----------------------------------------------------------------------------

    def query(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        task: str | None = None,
        group: str | None = None,
        deployed: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks whose attributes include ``attributes`` (values compared as text), with their
        group, deployment status and current model."""
        wanted = {str(k): str(v) for k, v in (attributes or {}).items()}
        keys = attr_keys(wanted)
        params: dict[str, Any] = {}
        for i, (name, value) in enumerate(keys):
            params[f"n{i}"], params[f"v{i}"] = name, value
        for key, value in (("task", task), ("group", group), ("deployed", deployed)):
            if value is not None:
                params[key] = value
        stmt = self._query_statement(len(keys), task is not None, group is not None, deployed)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt, params).all()
        # the lookup rows hold (name, value) cut to their columns' lengths (and a database's
        # collation may fold case): the full values are compared here
        found = []
        for row in rows:
            attrs = parse_task_attr(row[1])
            if any(k not in attrs or str(attrs[k]) != v for k, v in wanted.items()):
                continue
            found.append(_describe(row, attrs))
        return found

    def _query_statement(
        self, attrs: int, by_task: bool, by_group: bool, deployed: bool | None
    ) -> Any:
        """The one SELECT answering a query of this shape, built once and reused (SQLAlchemy
        then finds its compiled form in the engine's cache without rebuilding the statement).

        Tasks come through the ``kb_task_attr`` index, with their group, their group's current
        model (the newest row marked current) and how many model versions the group has, so a
        query is one round trip whatever it matches, and no ORM object is built per row."""
        shape = (attrs, by_task, by_group, deployed is not None)
        stmt = self._queries.get(shape)
        if stmt is not None:
            return stmt
        t, g, r = Task.__table__, TaskGroup.__table__, TaskRelation.__table__
        m, a = TaskModel.__table__, TaskAttr.__table__
        versions = m.alias("versions")
        latest = m.alias("latest")
        current_id = (
            select(func.max(latest.c.id))
            .where(latest.c.task_id == g.c.id, latest.c.is_current == true())
            .scalar_subquery()
        )
        version_count = (
            select(func.count(versions.c.id)).where(versions.c.task_id == g.c.id).scalar_subquery()
        )
        found = select(
            t.c.name.label("task"),
            t.c.task_attr,
            g.c.name.label("grp"),
            g.c.deploy,
            g.c.sample_num,
            version_count.label("versions"),
            current_id.label("model_id"),
        ).select_from(t.join(r, r.c.task_id == t.c.id).join(g, g.c.id == r.c.grp_id))
        for i in range(attrs):  # candidates through the (name, value) index
            found = found.where(
                t.c.id.in_(
                    select(a.c.task_id).where(
                        a.c.name == bindparam(f"n{i}"), a.c.value == bindparam(f"v{i}")
                    )
                )
            )
        if by_task:
            found = found.where(t.c.name == bindparam("task"))
        if by_group:
            found = found.where(g.c.name == bindparam("group"))
        if deployed is not None:
            found = found.where(func.coalesce(g.c.deploy, False) == bindparam("deployed"))
        # the matches first, then their current models by primary key: a correlated subquery
        # in the join condition made PostgreSQL scan every model for every match
        hits = found.subquery("hits")
        stmt = (
            select(
                *hits.c,
                m.c.version,
                m.c.sha256,
                m.c.format,
                m.c.model_url,
                m.c.metrics,
            )
            .select_from(hits.outerjoin(m, m.c.id == hits.c.model_id))
            .order_by(hits.c.task, hits.c.grp)
        )
        self._queries[shape] = stmt
        return stmt

    def counts(self) -> dict[str, int]:
        """Rows per table (for status output and tests)."""
        tables: Iterable[Any] = (
            TaskGroup,
            Task,
            TaskModel,
            TaskRelation,
            Sample,
            TaskSample,
            Deployment,
            IndexVersion,
            FileRecord,
        )
        with self._sessions() as s:
            return {
                t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0)
                for t in tables
            }


def _describe(row: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """A query answer's entry from one row of :meth:`KnowledgeBaseDB._query_statement`."""
    task, _, group, deploy, sample_num, versions, model_id = row[:7]
    version, sha256, fmt, url, metrics = row[7:]
    return {
        "task": task,
        "task_attr": attrs,
        "group": group,
        "deployed": bool(deploy),
        "sample_num": sample_num or 0,
        "model_versions": int(versions or 0),
        "model": None
        if model_id is None
        else {
            "version": version,
            "sha256": sha256,
            "format": fmt,
            "url": url,
            "metrics": json.loads(metrics or "{}"),
        },
    }


#: rows a publish must add before PostgreSQL's planner statistics are refreshed
_ANALYZE_AFTER_ROWS = 1000

_CHUNK = 500  # names per IN (...) list: far below every database's bound-parameter limit


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _select_in(conn: Connection, base: Any, key: Any, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``base`` (a select) whose ``key`` is one of ``keys``, as the driver
    returns them (booleans may come back as 0/1), by ``IN`` lists of :data:`_CHUNK` keys
    compiled once (SQLAlchemy re-renders an expanding ``IN`` list on every execution)."""
    if not keys:
        return []
    size = min(_CHUNK, len(keys))
    binds = [bindparam(f"k{i}") for i in range(size)]
    compiled = base.where(key.in_(binds)).compile(dialect=conn.dialect)
    names = [b.key for b in binds]
    order = list(compiled.positiontup or names)
    found: list[tuple[Any, ...]] = []
    for part in _chunks(keys):
        # a short last chunk repeats its last key: the same statement, the same rows
        padded = dict(zip(names, [*part, *[part[-1]] * (size - len(part))], strict=True))
        args: Any = tuple(padded[n] for n in order) if compiled.positional else padded
        found.extend(tuple(r) for r in conn.exec_driver_sql(compiled.string, args))
    return found


class _IndexWriter:
    """Records an index's groups, tasks, relations, samples and models with a bounded number
    of set-based statements (lookups by ``IN`` lists, executemany inserts and updates), not a
    few round trips per task: a 10k-task index is a few hundred statements.

    Upserted rows keep the meaning they had row by row: fields are overwritten (a group or
    task listed twice: the last listing wins), relations and sample sets are added once, a
    group's model is a new version unless its digest is already one of the group's."""

    def __init__(self, conn: Connection, now: dt.datetime) -> None:
        self.conn = conn
        self.now = now
        self.inserted = 0  # rows added (a large load refreshes the planner's statistics)

    def _driver_many(self, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run ``stmt`` once per row (rows with the same keys: the first row's keys choose the
        columns) through the driver's ``executemany``, compiled once.

        SQLAlchemy's own executemany builds and type-converts a parameter set per row in
        Python (most of a 10k-task publish's time); here the values are gathered column by
        column, each column's bind processor (e.g. SQLite's datetime-to-text) converts each
        distinct value once (a publish writes one timestamp), and a value no row gives (a
        column's scalar default) is taken from the compiled statement."""
        dialect = self.conn.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
        names = list(compiled.positiontup or compiled.binds)
        columns: list[list[Any]] = []
        for name in names:
            bind = compiled.binds[name]
            default = bind.effective_value
            values = [row.get(name, default) for row in rows]
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                done: dict[tuple[type, Any], Any] = {}  # by type too: True == 1 == 1.0
                try:
                    values = [
                        done[k] if (k := (type(v), v)) in done else done.setdefault(k, convert(v))
                        for v in values
                    ]
                except TypeError:  # an unhashable value: converted one by one
                    values = [convert(v) for v in values]
            columns.append(values)
        params: list[Any] = list(zip(*columns, strict=True))
        if not compiled.positional:
            params = [dict(zip(names, values, strict=True)) for values in params]
        self.conn.exec_driver_sql(compiled.string, params)

    def _lookup(self, base: Any, key: Any, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        return _select_in(self.conn, base, key, keys)

    def _insert(self, model: Any, rows: list[dict[str, Any]], *returning: Any) -> list[Any]:
        if not rows:
            return []
        self.inserted += len(rows)
        stmt = insert(model.__table__)
        if not returning:
            self._driver_many(stmt, rows)
            return []
        # rows come back in any order (asking for the parameters' order makes SQLite insert
        # row by row): callers return a natural key with the id
        return list(self.conn.execute(stmt.returning(*returning), rows))

    def _insert_named(self, model: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Insert rows with a unique ``name``; their ids by name (selected back: the driver's
        executemany returns no rows, and SQLAlchemy's RETURNING path is the per-row one)."""
        self._insert(model, rows)
        table = model.__table__
        return dict(  # type: ignore[arg-type]
            self._lookup(select(table.c.name, table.c.id), table.c.name, [r["name"] for r in rows])
        )

    def _update(self, model: Any, rows: list[dict[str, Any]], *columns: str) -> None:
        if not rows:
            return
        table = model.__table__
        stmt = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(f"_{c}") for c in columns})
        )
        self._driver_many(stmt, [{f"_{k}": v for k, v in r.items()} for r in rows])

    def write(self, listed: list[tuple[str, Mapping[str, Any]]]) -> None:
        grp_ids = self._groups(listed)
        task_ids = self._tasks([t for _, g in listed for t in g["tasks"]])
        self._relations(listed, grp_ids, task_ids)
        self._samples([t for _, g in listed for t in g["tasks"]], task_ids)
        self._models([(grp_ids[n], g["model"]) for n, g in listed if g.get("model")])

    def _groups(self, listed: list[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
        fields: dict[str, dict[str, Any]] = {}
        for name, group in listed:  # a group listed twice: the last listing wins
            tasks = group["tasks"]
            fields[name] = {
                "deploy": bool(group.get("deployed", True)),
                "task_num": len(tasks),  # absolute counts (Sedna added on every update)
                "sample_num": int(
                    group.get("sample_num", sum(t.get("sample_num", 0) for t in tasks))
                ),
            }
        existing: dict[str, tuple[int, tuple[Any, ...]]] = {}
        t = TaskGroup.__table__
        for name, gid, deploy, task_num, sample_num in self._lookup(
            select(t.c.name, t.c.id, t.c.deploy, t.c.task_num, t.c.sample_num),
            t.c.name,
            list(fields),
        ):
            deployed = None if deploy is None else bool(deploy)
            existing[name] = (gid, (deployed, task_num, sample_num))
        ids = {name: gid for name, (gid, _) in existing.items()}
        ids.update(
            self._insert_named(
                TaskGroup,
                [
                    {"name": n, "created_at": self.now, "updated_at": self.now, **f}
                    for n, f in fields.items()
                    if n not in existing
                ],
            )
        )
        # only rows whose fields change are written (``updated_at``: when they last changed),
        # so republishing a large index with a few changes writes a few rows
        self._update(
            TaskGroup,
            [
                {"id": ids[n], **f, "updated_at": self.now}
                for n, f in fields.items()
                if n in existing and existing[n][1] != (f["deploy"], f["task_num"], f["sample_num"])
            ],
            "deploy",
            "task_num",
            "sample_num",
            "updated_at",
        )
        return ids

    def _tasks(self, tasks: list[Mapping[str, Any]]) -> dict[str, int]:
        attrs = {t["entry"]: json.dumps(t.get("meta_attr", {}), sort_keys=True) for t in tasks}
        names = list(attrs)
        t = Task.__table__
        old: dict[str, tuple[int, str | None]] = {
            name: (tid, raw)
            for name, tid, raw in self._lookup(
                select(t.c.name, t.c.id, t.c.task_attr), t.c.name, names
            )
        }
        ids = {name: tid for name, (tid, _) in old.items()}
        ids.update(
            self._insert_named(
                Task,
                [
                    {
                        "name": n,
                        "task_attr": attrs[n],
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                    for n in names
                    if n not in old
                ],
            )
        )
        self._update(
            Task,
            [
                {"id": ids[n], "task_attr": attrs[n], "updated_at": self.now}
                for n, (_, raw) in old.items()
                if raw != attrs[n]
            ],
            "task_attr",
            "updated_at",
        )
        # the attribute lookup rows of every task whose attributes are new or changed
        changed = [n for n in names if n not in old or old[n][1] != attrs[n]]
        stale = [ids[n] for n in changed if n in old]
        for part in _chunks(stale):
            self.conn.execute(delete(TaskAttr.__table__).where(TaskAttr.task_id.in_(part)))
        self._insert(
            TaskAttr,
            [
                {"task_id": ids[n], "name": k, "value": v}
                for n in changed
                for k, v in attr_keys(parse_task_attr(attrs[n]))
            ],
        )
        return ids

    def _relations(
        self,
        listed: list[tuple[str, Mapping[str, Any]]],
        grp_ids: dict[str, int],
        task_ids: dict[str, int],
    ) -> None:
        have: dict[tuple[int, int], tuple[int, float | None]] = {}
        r = TaskRelation.__table__
        for rid, gid, tid, radio in self._lookup(
            select(r.c.id, r.c.grp_id, r.c.task_id, r.c.transfer_radio),
            r.c.grp_id,
            list(set(grp_ids.values())),
        ):
            have[(gid, tid)] = (rid, radio)
        wanted: dict[tuple[int, int], float] = {}
        for name, group in listed:
            for task in group["tasks"]:
                wanted[(grp_ids[name], task_ids[task["entry"]])] = 1.0 / len(group["tasks"])
        self._insert(
            TaskRelation,
            [
                {"grp_id": g, "task_id": t, "transfer_radio": r}
                for (g, t), r in wanted.items()
                if (g, t) not in have
            ],
        )
        self._update(
            TaskRelation,
            [
                {"id": have[k][0], "transfer_radio": r}
                for k, r in wanted.items()
                if k in have and have[k][1] != r
            ],
            "transfer_radio",
        )

    def _samples(self, tasks: list[Mapping[str, Any]], task_ids: dict[str, int]) -> None:
        listed = [t for t in tasks if t.get("samples")]
        have: set[tuple[int, str | None]] = set()
        for part in _chunks([task_ids[t["entry"]] for t in listed]):
            have.update(
                self.conn.execute(
                    select(TaskSample.task_id, Sample.sha256)
                    .join(Sample, Sample.id == TaskSample.sample_id)
                    .where(TaskSample.task_id.in_(part))
                ).all()
            )
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        for task in listed:
            samples = task["samples"]
            key = (task_ids[task["entry"]], samples["sha256"])
            if key in have or key in rows:
                continue
            rows[key] = {
                "data_url": samples.get("url", ""),
                "descr": f"training samples of task {task['entry']}",
                "data_type": 0,
                "sample_num": int(task.get("sample_num", 0)),
                "sha256": samples["sha256"],
                "format": samples["format"],
                "updated_at": self.now,
            }
        # (description, digest) is unique among the new rows: the description names the task
        task_of = {(r["descr"], r["sha256"]): tid for (tid, _), r in rows.items()}
        inserted = self._insert(Sample, list(rows.values()), Sample.id, Sample.descr, Sample.sha256)
        self._insert(
            TaskSample,
            [{"sample_id": sid, "task_id": task_of[(d, h)]} for sid, d, h in inserted],
        )

    def _models(self, refs: list[tuple[int, Mapping[str, Any]]]) -> None:
        models: dict[int, list[list[Any]]] = {gid: [] for gid, _ in refs}
        m = TaskModel.__table__
        for row in self._lookup(
            select(m.c.id, m.c.task_id, m.c.sha256, m.c.version, m.c.is_current),
            m.c.task_id,
            list(models),
        ):
            models[row[1]].append(list(row))
        current: dict[int, Any] = {}  # group id -> model id, or the new row's values
        new: list[dict[str, Any]] = []
        for gid, ref in refs:
            if isinstance(current.get(gid), dict):  # the group is listed twice: superseded
                current[gid]["is_current"] = False
            found = next((m for m in models[gid] if m[2] == ref["sha256"]), None)
            if found is not None:
                current[gid] = found[0] if found[0] is not None else found[5]
                continue
            row = {
                "task_id": gid,
                "version": max((m[3] or 0 for m in models[gid]), default=0) + 1,
                "model_url": ref.get("url", ""),
                "sha256": ref["sha256"],
                "format": ref["format"],
                "size": ref.get("size"),
                "metrics": json.dumps(ref["metrics"], sort_keys=True, default=str)
                if ref.get("metrics")
                else "{}",
                "is_current": True,
                "created_at": self.now,
            }
            models[gid].append([None, gid, ref["sha256"], row["version"], True, row])
            current[gid] = row
            new.append(row)
        for row in new:
            row["is_current"] = current[row["task_id"]] is row
        self._insert(TaskModel, new)
        self._update(
            TaskModel,
            [
                {"id": m[0], "is_current": m[0] == current[gid]}
                for gid, rows in models.items()
                for m in rows
                if m[0] is not None and bool(m[4]) != (m[0] == current[gid])
            ],
            "is_current",
        )
