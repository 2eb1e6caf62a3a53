"""The prediction log: every served prediction and every feedback label, in one SQL store.

SQLAlchemy Core, so any SQLAlchemy URL works (PostgreSQL in production); the default is a SQLite file under
``FAKENEWS_HOME`` (``settings.prediction_log_url()``). SQLite is made safe for many concurrent writers, threads
and processes alike: WAL journal (readers never block the writer), a generous busy timeout (writers wait
for each other instead of failing), and write transactions opened with ``BEGIN IMMEDIATE`` (a writer takes
the write lock up front, so it can never hit the "database is locked" error that a read-then-write upgrade
gets without waiting). ``synchronous=NORMAL`` under WAL survives application crashes; only an OS crash or
power loss may drop the last commits.

All timestamps are stored as naive UTC and come back as timezone-aware UTC.

Columns added after the first release (``ADDED_COLUMNS``: the out-of-domain score and flag) are nullable and
added to an older log in place when it is opened (``ALTER TABLE ... ADD COLUMN``): old rows read as null,
nothing is rewritten.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from fakenews_ml.errors import InputError, StorageConfigError
from fakenews_ml.headlines import text_problem

BUSY_TIMEOUT_MS = 60_000
MAX_ID = 2**63 - 1  # the largest id any backend stores: larger numbers are refused, never sent to the database
_IN_CHUNK = 500  # ids per IN (...) query: far below every backend's parameter limit


class UTCDateTime(TypeDecorator):
    """Stored naive in UTC (portable across backends), returned timezone-aware in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else to_utc(value).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("prob_fake", Float, nullable=False),
    Column("label", SmallInteger, nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("origin", String(32), nullable=False),
    # how far the headline lies from the training data, and whether that is past the model's threshold
    Column("ood_score", Float, nullable=True),
    Column("out_of_domain", Boolean, nullable=True),
)
ADDED_COLUMNS = {"predictions": ("ood_score", "out_of_domain")}

# prediction_id is checked on insert rather than declared as a foreign key: the log may be pruned of old
# predictions while the labels they earned stay useful for training.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", Integer, nullable=True, index=True),
    Column("request_id", String(64), nullable=True),
    Column("title", Text, nullable=False),
    Column("label", SmallInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("source", String(128), nullable=False),
)

PREDICTION_COLUMNS = [c.name for c in predictions.columns]
FEEDBACK_COLUMNS = [c.name for c in feedback.columns]


def to_utc(value) -> datetime:
    """A timezone-aware UTC datetime from a datetime, pandas Timestamp, date or ISO string (naive = UTC)."""
    if isinstance(value, str):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets the concurrency settings described in the module docstring."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageConfigError(
            "the prediction log URL is not a SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db or sqlite:///path)"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        # create_engine imports the driver: a missing one is a setup problem, said in one line
        shown = parsed.render_as_string(hide_password=True)
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except NoSuchModuleError:
            raise StorageConfigError(
                f"prediction log {shown}: SQLAlchemy has no backend {parsed.drivername!r} "
                "(e.g. postgresql+psycopg:// or sqlite:///)"
            ) from None
        except ImportError as exc:
            raise StorageConfigError(
                f"prediction log {shown}: its driver is not installed ({exc}); install it, "
                "e.g. `pip install 'psycopg[binary]'` for postgresql+psycopg://"
            ) from None
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if in_memory:
        # One shared connection, or every pooled connection would see its own empty database.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    _tune_sqlite(engine, wal=not in_memory)
    return engine


def _tune_sqlite(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # The driver's own implicit BEGIN is turned off so that we choose the transaction mode below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class PredictionLog:
    """The store of predictions and feedback labels. Thread-safe; one instance per process is plenty."""

    def __init__(self, url: str | None = None):
        from fakenews_ml.environment import prediction_log_url

        self.url = url or prediction_log_url()
        self._engine = make_engine(self.url)
        # Write transactions take SQLite's write lock at BEGIN (a no-op option on other backends).
        self._write_engine = self._engine.execution_options(sqlite_immediate=True)
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PredictionLog({self._engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- schema -----------------------------------------------------------------------------------

    def _ensure_tables(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                with self._write_engine.begin() as conn:  # under the write lock: no create race on SQLite
                    metadata.create_all(conn)
            except SQLAlchemyError:
                # Another process created the tables between our check and our CREATE (PostgreSQL).
                with self._write_engine.begin() as conn:
                    metadata.create_all(conn)
            _add_missing_columns(self._write_engine)
            self._ready = True

    def check_available(self) -> None:
        """Connect (creating the tables if needed) now, or StorageConfigError in one line: a server started on a
        log it cannot reach would otherwise fail only at its first request."""
        try:
            self._ensure_tables()
        except SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StorageConfigError(f"cannot open the prediction log {self!r}: {first}") from None

    def _read(self):
        self._ensure_tables()
        return self._engine.connect()

    def _write(self):
        self._ensure_tables()
        return self._write_engine.begin()

    # ----- predictions ------------------------------------------------------------------------------

    def log_predictions(self, rows: Iterable[Mapping], return_ids: bool = True) -> list[int]:
        """Insert prediction rows in one transaction; returns their ids in input order (or [] when
        ``return_ids`` is False: a plain executemany, several times cheaper for the API's log writer).

        Each row: ``request_id, title, prob_fake, label, model_version``, optional ``origin`` (default
        'api') and ``created_at`` (default now)."""
        records = [_prediction_record(i, row) for i, row in enumerate(rows)]
        if not records:
            return []
        with self._write() as conn:
            if not return_ids:
                conn.execute(predictions.insert(), records)
                return []
            result = conn.execute(
                predictions.insert().returning(predictions.c.id, sort_by_parameter_order=True), records
            )
            return [int(row[0]) for row in result]

    def window(self, start, end, origin: str | None = None) -> pd.DataFrame:
        """Predictions with ``start <= created_at < end`` (UTC), oldest first."""
        query = select(predictions).where(
            predictions.c.created_at >= to_utc(start), predictions.c.created_at < to_utc(end)
        )
        if origin is not None:
            query = query.where(predictions.c.origin == origin)
        return self._prediction_frame(query.order_by(predictions.c.created_at, predictions.c.id))

    def recent(self, n: int = 100) -> pd.DataFrame:
        """The ``n`` newest predictions, newest first."""
        query = select(predictions).order_by(predictions.c.created_at.desc(), predictions.c.id.desc()).limit(n)
        return self._prediction_frame(query)

    def by_request(self, request_id: str) -> pd.DataFrame:
        query = select(predictions).where(predictions.c.request_id == request_id).order_by(predictions.c.id)
        return self._prediction_frame(query)

    def count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())

    def count_since(self, ts) -> int:
        query = select(func.count()).select_from(predictions).where(predictions.c.created_at >= to_utc(ts))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def count_after(self, last_id: int) -> int:
        """Predictions with an id above ``last_id`` (ids only grow: what arrived since a reader's cursor)."""
        query = select(func.count()).select_from(predictions).where(predictions.c.id > int(last_id))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def stats(self) -> dict:
        """What a watcher needs to tell whether the log changed: row counts, highest ids and the time span
        of the predictions (None when there are none), and the same for feedback labels."""
        with self._read() as conn:
            p = conn.execute(
                select(
                    func.count(),
                    func.max(predictions.c.id),
                    func.min(predictions.c.created_at),
                    func.max(predictions.c.created_at),
                )
            ).one()
            f = conn.execute(select(func.count(), func.max(feedback.c.id))).one()
        as_utc = UTCDateTime().process_result_value
        return {
            "predictions": int(p[0]),
            "max_id": int(p[1]) if p[1] is not None else 0,
            "first_prediction_at": as_utc(p[2], None) if p[2] is not None else None,
            "last_prediction_at": as_utc(p[3], None) if p[3] is not None else None,
            "feedback": int(f[0]),
            "feedback_max_id": int(f[1]) if f[1] is not None else 0,
        }

    def daily_counts(self, after_id: int | None = None) -> pd.DataFrame:
        """Predictions per UTC day: columns ``day`` ('YYYY-MM-DD', the daily partition key) and ``count``;
        with ``after_id``, only predictions whose id is above it (the days new traffic landed on)."""
        day = func.date(predictions.c.created_at).label("day")
        query = select(day, func.count().label("count"))
        if after_id is not None:
            query = query.where(predictions.c.id > int(after_id))
        query = query.group_by(day).order_by(day)
        with self._read() as conn:
            rows = conn.execute(query).all()
        # SQLite returns the day as text, PostgreSQL as a date: one string form for both.
        return pd.DataFrame({"day": [str(r.day)[:10] for r in rows], "count": [int(r.count) for r in rows]})

    def labelled_predictions(self, start, end) -> pd.DataFrame:
        """Predictions with ``start <= created_at < end`` (UTC) that received a linked feedback label, oldest
        first: ``id, created_at, model_version, origin, predicted`` (the model's label) and ``label`` (the
        person's; the latest feedback per prediction wins)."""
        query = (
            select(
                predictions.c.id,
                predictions.c.created_at,
                predictions.c.model_version,
                predictions.c.origin,
                predictions.c.label.label("predicted"),
                feedback.c.label,
            )
            .join(feedback, feedback.c.prediction_id == predictions.c.id)
            .where(predictions.c.created_at >= to_utc(start), predictions.c.created_at < to_utc(end))
            .order_by(feedback.c.id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        columns = ["id", "created_at", "model_version", "origin", "predicted", "label"]
        frame = pd.DataFrame.from_records(rows, columns=columns).drop_duplicates("id", keep="last")
        frame = frame.astype({"id": "int64", "predicted": "int8", "label": "int8"}).assign(
            created_at=pd.to_datetime(frame["created_at"], utc=True)
        )
        return frame.sort_values(["created_at", "id"]).reset_index(drop=True)

    def _prediction_frame(self, query) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=PREDICTION_COLUMNS)
        return frame.astype(
            {"id": "int64", "prob_fake": "float64", "label": "int8", "ood_score": "float64", "out_of_domain": "boolean"}
        ).assign(created_at=pd.to_datetime(frame["created_at"], utc=True))

    # ----- feedback ---------------------------------------------------------------------------------

    def add_feedback(self, rows: Iterable[Mapping], source: str = "api", arrival_checks: bool = True) -> list[int]:
        """Store feedback labels, all or nothing; returns their ids.

        Each row: ``label`` (0 = real, 1 = fake) and ``title``, optionally linked to a logged prediction by
        ``prediction_id`` or by ``request_id`` (+ ``title`` when that request had several headlines). A
        linked row may omit the title (the prediction's is used); a link that does not resolve, a title
        that contradicts its prediction, or a title the feedback data suite would reject
        (``feedback_rules``: checked on the title finally stored) rejects the whole batch with an
        InputError naming the row. ``arrival_checks=False`` skips the suite's bounds: only for recreating
        rows stored before they were checked on arrival (tests of the retrain-time quarantine)."""
        from fakenews_ml.monitoring.feedback_rules import feedback_title_problem, feedback_validation_config

        rows = list(rows)
        if not rows:
            raise InputError("no feedback rows given")
        drafts = [_feedback_draft(i, row, source) for i, row in enumerate(rows)]
        bounds = feedback_validation_config()
        with self._write() as conn:  # links are resolved and rows inserted under one write lock
            _resolve_links(conn, drafts)
            for i, draft in enumerate(drafts):
                problem = feedback_title_problem(draft["title"].strip(), bounds) if arrival_checks else None
                if problem is not None:
                    raise InputError(f"feedback row {i}: {problem}")
            result = conn.execute(feedback.insert().returning(feedback.c.id, sort_by_parameter_order=True), drafts)
            return [int(row[0]) for row in result]

    def feedback_table(self) -> pd.DataFrame:
        """Every stored feedback row as is (with its links), oldest first."""
        with self._read() as conn:
            rows = conn.execute(select(feedback).order_by(feedback.c.created_at, feedback.c.id)).all()
        frame = pd.DataFrame.from_records(rows, columns=FEEDBACK_COLUMNS)
        return frame.astype({"id": "int64", "prediction_id": "Int64", "label": "int8"}).assign(
            created_at=pd.to_datetime(frame["created_at"], utc=True)
        )

    def feedback_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback)).scalar_one())

    def feedback_frame(self, since=None) -> pd.DataFrame:
        """Feedback as the canonical news frame (``id, title, text, label, source``), one row per title
        (the latest label wins: people correct themselves); ``source`` is ``feedback:<where it came from>``
        so the training lineage shows it. Not validated here: the merge into training data runs the suite."""
        from fakenews_ml.data.readers import CANONICAL_COLUMNS, canonicalize

        table = self.feedback_table()
        if since is not None:
            table = table[table["created_at"] >= pd.Timestamp(to_utc(since))]
        table = table.drop_duplicates(subset="title", keep="last")
        raw = pd.DataFrame(
            {
                "title": table["title"].astype(str).to_numpy(),
                "label": table["label"].astype(str).to_numpy(),
                "source": ("feedback:" + table["source"].astype(str)).to_numpy(),
            }
        )
        if raw.empty:
            return pd.DataFrame({c: pd.Series(dtype="int8" if c == "label" else "string") for c in CANONICAL_COLUMNS})
        return canonicalize(raw, "feedback", where="feedback labels")

    def close(self) -> None:
        self._engine.dispose()


def _prediction_record(i: int, row: Mapping) -> dict:
    try:
        title, label, prob = row["title"], int(row["label"]), float(row["prob_fake"])
        record = {
            "request_id": str(row["request_id"]),
            "created_at": to_utc(row.get("created_at") or utc_now()),
            "title": title,
            "prob_fake": prob,
            "label": label,
            "model_version": str(row["model_version"]),
            "origin": str(row.get("origin") or "api"),
            "ood_score": _optional_float(row.get("ood_score")),
            "out_of_domain": None if row.get("out_of_domain") is None else bool(row["out_of_domain"]),
        }
    except KeyError as exc:
        raise InputError(f"prediction row {i}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"prediction row {i}: {exc}") from None
    if not isinstance(title, str) or not title.strip():
        raise InputError(f"prediction row {i}: empty title")
    if label not in (0, 1) or not 0.0 <= prob <= 1.0:
        raise InputError(f"prediction row {i}: label {label} / prob_fake {prob} out of range")
    return record


def _optional_float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value else None  # NaN: not scored


def _add_missing_columns(engine: Engine) -> None:
    """Add the columns of ``ADDED_COLUMNS`` that a log created by an older version lacks (nullable: old rows
    read as null). Two processes may race here: the loser's ALTER fails, and the column is there."""
    for table_name, names in ADDED_COLUMNS.items():
        table = metadata.tables[table_name]
        present = {c["name"] for c in inspect(engine).get_columns(table_name)}
        for name in names:
            if name in present:
                continue
            column = table.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}")
            except SQLAlchemyError:
                if name not in {c["name"] for c in inspect(engine).get_columns(table_name)}:
                    raise


def _feedback_draft(i: int, row: Mapping, source: str) -> dict:
    if not isinstance(row, Mapping):
        raise InputError(f"feedback row {i}: expected an object with title and label, got {type(row).__name__}")
    label = row.get("label")
    if hasattr(label, "item") and not isinstance(label, (bool, str)):  # numpy scalars
        label = label.item()
    # bool is an int subclass: true/false would silently mean 1/0, so it is refused like "1" or 0.5.
    if isinstance(label, bool) or not isinstance(label, int) or label not in (0, 1):
        raise InputError(f"feedback row {i}: label must be 0 (real) or 1 (fake), got {label!r}")
    title = row.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise InputError(f"feedback row {i}: title must be a non-empty string")
    prediction_id = row.get("prediction_id")
    if hasattr(prediction_id, "item") and not isinstance(prediction_id, (bool, str)):  # numpy scalars
        prediction_id = prediction_id.item()
    if prediction_id is not None and (
        isinstance(prediction_id, bool) or not isinstance(prediction_id, int) or not 1 <= prediction_id <= MAX_ID
    ):
        shown = prediction_id if not isinstance(prediction_id, int) or prediction_id < 10**20 else "a 20+ digit number"
        raise InputError(
            f"feedback row {i}: prediction_id must be a positive integer of at most {MAX_ID}, got {shown!r}"
        )
    request_id = row.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not request_id.strip() or len(request_id.strip()) > 64
    ):
        raise InputError(f"feedback row {i}: request_id must be a non-empty string of at most 64 characters")
    source = row.get("source") or source
    if not isinstance(source, str) or len(source) > 128:
        raise InputError(f"feedback row {i}: source must be a string of at most 128 characters")
    for name, value in (("title", title), ("request_id", request_id), ("source", source)):
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise InputError(f"feedback row {i}: {name} {problem}")
    if title is None and prediction_id is None and request_id is None:
        raise InputError(f"feedback row {i}: give a title (or the prediction_id / request_id it is about)")
    return {
        "prediction_id": prediction_id,
        "request_id": request_id.strip() if request_id else None,
        "title": title.strip() if title else None,
        "label": int(label),
        "created_at": to_utc(row.get("created_at") or utc_now()),
        "source": source,
        "_row": i,
    }


def _resolve_links(conn, drafts: list[dict]) -> None:
    """Fill ``prediction_id``/``request_id``/``title`` from the logged predictions, or raise naming the row."""
    by_id = _fetch(conn, predictions.c.id, {d["prediction_id"] for d in drafts if d["prediction_id"] is not None})
    by_request: dict[str, list] = {}
    for row in _fetch(
        conn,
        predictions.c.request_id,
        {d["request_id"] for d in drafts if d["request_id"] and d["prediction_id"] is None},
    ).values():
        by_request.setdefault(row.request_id, []).append(row)
    for draft in drafts:
        i = draft.pop("_row")
        if draft["prediction_id"] is not None:
            found = by_id.get(draft["prediction_id"])
            if found is None:
                raise InputError(f"feedback row {i}: prediction {draft['prediction_id']} is not in the prediction log")
            if draft["request_id"] not in (None, found.request_id):
                raise InputError(
                    f"feedback row {i}: prediction {found.id} belongs to request {found.request_id}, not {draft['request_id']}"
                )
        elif draft["request_id"] is not None:
            candidates = by_request.get(draft["request_id"], [])
            if not candidates:
                raise InputError(f"feedback row {i}: request {draft['request_id']} is not in the prediction log")
            if draft["title"] is not None:
                candidates = [row for row in candidates if row.title.strip() == draft["title"]]
            if not candidates:
                raise InputError(
                    f"feedback row {i}: request {draft['request_id']} has no headline {draft['title'][:80]!r}"
                )
            if len(candidates) > 1 and draft["title"] is None:
                raise InputError(
                    f"feedback row {i}: request {draft['request_id']} has {len(candidates)} headlines; give the title"
                )
            found = candidates[0]
        else:
            continue  # an unlinked label (e.g. imported from a labelled file)
        if draft["title"] is not None and draft["title"] != found.title.strip():
            raise InputError(
                f"feedback row {i}: title {draft['title'][:80]!r} differs from prediction {found.id}'s headline"
            )
        draft.update(prediction_id=found.id, request_id=found.request_id, title=found.title)


def _fetch(conn, column, keys: set) -> dict:
    """Logged predictions whose ``column`` is in ``keys``, by id."""
    keys, found = sorted(keys), {}
    for start in range(0, len(keys), _IN_CHUNK):
        query = select(predictions.c.id, predictions.c.request_id, predictions.c.title).where(
            column.in_(keys[start : start + _IN_CHUNK])
        )
        found.update({row.id: row for row in conn.execute(query)})
    return found
