"""Where corrections are kept: SQLAlchemy 2 over SQLite (the default) or PostgreSQL, schema by Alembic migrations.

SQLAlchemy gives one code path for both databases (and a connection pool); Alembic versions the schema, so a
deployed database is upgraded in place rather than re-created. Migrations run at start-up: each worker calls
Store.ensure_schema(), which upgrades under a lock (a file lock beside the SQLite file, a PostgreSQL advisory
lock), so several gunicorn workers, or several replicas, starting at once apply each migration exactly once.
`digits-db upgrade` (service/dbcli.py) applies them explicitly, e.g. before a rollout.

A database that is down, full or locked too long raises StorageUnavailable; the API answers 503 for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import DateTime, Engine, LargeBinary, String, create_engine, event, func, insert, select, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_S = 5  # SQLite: how long a writer waits for another worker's write before giving up (503)
CONNECT_TIMEOUT_S = 5  # PostgreSQL: a server that does not answer in this time is down (503)
# SQLite's commit durability, chosen by DATABASE_URL's `?synchronous=`. In WAL mode, NORMAL (the default): a commit
# is in the WAL file when the 201 goes out, so it survives a killed worker and a restarted server; only a power cut
# or an OS crash can lose the last commits before a checkpoint. FULL also fsyncs every commit: +1.1 ms each
# (python -m bench.corrections), more than the whole prediction costs.
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")
MIGRATION_LOCK = 0x64696769  # PostgreSQL advisory lock key ("digi")
STATUSES = ("pending", "accepted", "rejected")
NOT_A_DIGIT = "not_a_digit"
LABELS = (*(str(d) for d in range(10)), NOT_A_DIGIT)


class StorageUnavailable(RuntimeError):
    """The database cannot be reached, is full, or stayed locked too long."""


class Base(DeclarativeBase):
    pass


class Correction(Base):
    """One user's correction: what was drawn, what the model said, what it was."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    label: Mapped[str] = mapped_column(String(16))  # "0".."9" or "not_a_digit"
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[int]
    predicted: Mapped[int | None]  # the model's digit for the stored input (None: no digit found)
    confidence: Mapped[float | None]
    shown: Mapped[int | None]  # the digit the client says it was shown, when it says so
    image: Mapped[bytes] = mapped_column(LargeBinary)  # the submitted image as a grey PNG, bounded in size
    input: Mapped[bytes | None] = mapped_column(LargeBinary)  # the 28x28 model input, uint8, row-major
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    reviewed: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # a client's key for one correction: a retry after a lost answer returns the first id, stores nothing twice
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)

    def summary(self) -> dict:
        """The fields the admin list shows."""
        return {
            "id": self.id,
            "label": self.label,
            "predicted": self.predicted,
            "confidence": None if self.confidence is None else round(self.confidence, 6),
            "model": {"name": self.model_name, "version": self.model_version},
            "created": utc(self.created).isoformat(timespec="seconds"),
            "status": self.status,
        }


TABLE = Correction.__table__


def utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back the UTC times it was given without their zone; PostgreSQL keeps it."""
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def default_url(data_dir: str) -> str:
    """The embedded database: $DATA_DIR/digits.db."""
    return f"sqlite:///{Path(data_dir).resolve() / 'digits.db'}"


def _sqlite_pragmas(dbapi_connection, _record, synchronous: str) -> None:
    # WAL: readers never block the writer, and one worker's write waits for another's (busy timeout) rather
    # than failing. synchronous: see SQLITE_SYNCHRONOUS.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", f"busy_timeout={BUSY_TIMEOUT_S * 1000}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def sqlite_synchronous(url: URL) -> tuple[URL, str]:
    """The URL without our `?synchronous=` option, and that option (SQLITE_SYNCHRONOUS, NORMAL by default)."""
    value = url.query.get("synchronous", "normal")
    if not isinstance(value, str) or value.upper() not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"DATABASE_URL's synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, not {value!r}")
    return url.difference_update_query(["synchronous"]), value.upper()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL mode and a busy timeout, PostgreSQL a connect timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        parsed, synchronous = sqlite_synchronous(parsed)
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:  # e.g. DATA_DIR not writable: corrections get 503s, predictions carry on
                log.error("cannot create the database's folder: %s", e)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, synchronous=synchronous))
        return engine
    # No pool_pre_ping: its SELECT 1 before every request cost 0.15 of 0.86 ms per correction (bench/corrections);
    # Store's methods try once more instead when a pooled connection had gone stale (_once_more_if_stale)
    return create_engine(parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, held under the lock that lets one process at a time migrate."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})  # freed at commit
            yield conn
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with engine.begin() as conn:
            yield conn
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, or the process dies
        with engine.begin() as conn:
            yield conn


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision`, once, whoever else is starting."""
    from alembic import command

    with _migration_lock(engine) as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextlib.contextmanager
def unavailable() -> Iterator[None]:
    """Database failures (down, full, locked, pool exhausted, its folder unwritable) as StorageUnavailable."""
    try:
        yield
    except IntegrityError:
        raise
    except (DBAPIError, SQLAlchemyError, OSError) as e:  # OSError: the SQLite file's folder or lock file
        reason = (str(e).splitlines() or [type(e).__name__])[0][:300]
        log.warning("database unavailable: %s", reason)
        raise StorageUnavailable(reason) from e


def _once_more_if_stale(method):
    """Run a Store method once more if it failed on a pooled connection that had gone stale (the database restarted
    since): SQLAlchemy has then invalidated the pool, so the second try connects afresh. A dead server fails both."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except StorageUnavailable as e:
            if not (isinstance(e.__cause__, DBAPIError) and e.__cause__.connection_invalidated):
                raise
            log.info("a pooled database connection was stale; once more on a fresh one")
        return method(*args, **kwargs)

    return wrapper


class Store:
    """Corrections in one database: add, list, review, export."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # add() writes one INSERT, its own transaction: in autocommit it commits before it returns (a 201 still
        # means committed) without the BEGIN and COMMIT round trips, 0.2 of 0.9 ms on PostgreSQL (bench/corrections)
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.schema_ready = False
        self._schema_lock = threading.Lock()  # a gevent lock under gunicorn's gevent worker: requests wait their turn

    def ensure_schema(self) -> None:
        """Migrate once per process; retried on the next call after a failure (the database was down)."""
        if self.schema_ready:
            return
        with self._schema_lock, unavailable():
            if not self.schema_ready:
                upgrade(self.engine)
                self.schema_ready = True

    def try_schema(self) -> bool:
        """ensure_schema() at start-up: a database that is down must not stop predictions being served."""
        try:
            self.ensure_schema()
        except StorageUnavailable as e:
            log.error("corrections database not ready, will retry on first use: %s", e)
        return self.schema_ready

    def add(self, correction: Correction) -> tuple[int, bool]:
        """Commit `correction`; (id, created). A key seen before returns the first id, created False."""
        self.ensure_schema()
        try:
            return self._insert(correction), True
        except IntegrityError:
            if correction.idempotency_key is None:
                raise
        return self._keyed(correction.idempotency_key), False

    @_once_more_if_stale
    def _insert(self, correction: Correction) -> int:
        # A stale connection fails before the INSERT reaches the server, so the second try stores it once. Only a
        # connection lost after the server committed and before its answer came could store a keyless one twice.
        # A Core INSERT ... RETURNING rather than the ORM's unit of work (session.add, flush): the same statement,
        # 0.2 ms less Python per correction (0.21 vs 0.43 ms on SQLite, ad hoc). Unset fields are left out, so
        # that the columns' defaults apply as the ORM would apply them.
        values = {c.key: getattr(correction, c.key) for c in TABLE.columns if getattr(correction, c.key) is not None}
        with unavailable(), self.autocommit.connect() as conn:
            correction.id = conn.execute(insert(TABLE).returning(TABLE.c.id), values).scalar_one()
            return correction.id

    @_once_more_if_stale
    def _keyed(self, key: str) -> int:
        with unavailable(), self.sessions() as session:
            return session.scalars(select(Correction.id).where(Correction.idempotency_key == key)).one()

    @_once_more_if_stale
    def page(self, limit: int, offset: int, status: str | None = None) -> tuple[int, list[Correction]]:
        """(total count, one page of corrections, newest first)."""
        self.ensure_schema()
        where = [Correction.status == status] if status else []
        with unavailable(), self.sessions() as session:
            count = session.scalar(select(func.count()).select_from(Correction).where(*where))
            query = select(Correction).where(*where).order_by(Correction.id.desc()).limit(limit).offset(offset)
            return count, list(session.scalars(query))

    @_once_more_if_stale
    def get(self, correction_id: int) -> Correction | None:
        self.ensure_schema()
        with unavailable(), self.sessions() as session:
            return session.get(Correction, correction_id)

    @_once_more_if_stale
    def review(self, correction_id: int, status: str) -> Correction | None:
        """Set a correction's status (accepted or rejected); None if there is no such correction."""
        self.ensure_schema()
        with unavailable(), self.sessions.begin() as session:
            correction = session.get(Correction, correction_id)
            if correction is not None:
                correction.status = status
                correction.reviewed = dt.datetime.now(dt.timezone.utc)
            return correction

    @_once_more_if_stale
    def accepted_digits(self) -> list[Correction]:
        """Accepted corrections that are digits with a model input: what training can use, oldest first."""
        self.ensure_schema()
        query = (
            select(Correction)
            .where(Correction.status == "accepted", Correction.label != NOT_A_DIGIT, Correction.input.is_not(None))
            .order_by(Correction.id)
        )
        with unavailable(), self.sessions() as session:
            return list(session.scalars(query))
