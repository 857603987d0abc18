"""The corrections database (service/storage.py) on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import inspect

from service.storage import Correction, StorageUnavailable, Store, current_revision, default_url, upgrade
from tests.conftest import ROOT

HEAD = "0001"


def correction(label: str = "7", key: str | None = None, status: str = "pending") -> Correction:
    return Correction(
        created=dt.datetime.now(dt.timezone.utc),
        label=label,
        model_name="cnn",
        model_version=1,
        predicted=1,
        confidence=0.9,
        image=b"\x89PNG...",
        input=bytes(range(256)) * 3 + bytes(16),
        status=status,
        idempotency_key=key,
    )


def test_migrations_make_the_schema_and_run_once(database_url):
    store = Store(database_url)
    assert current_revision(store.engine) is None
    store.ensure_schema()
    assert current_revision(store.engine) == HEAD
    columns = {c["name"] for c in inspect(store.engine).get_columns("corrections")}
    assert {"image", "input", "label", "model_name", "model_version", "predicted", "confidence", "created"} <= columns
    upgrade(store.engine)  # again: nothing to do, nothing fails
    assert current_revision(store.engine) == HEAD


def test_digits_db_upgrade_from_several_processes_at_once(database_url):
    """Six `digits-db upgrade` at once, as workers or replicas starting together: each migration runs once."""
    command = [sys.executable, "-m", "service.dbcli", "db", "upgrade", "--url", database_url]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * 6, [err.decode()[-500:] for _, err in outputs]
    assert all(out.decode().strip() == HEAD for out, _ in outputs)


def test_add_list_get_and_review(database_url):
    store = Store(database_url)
    ids = [store.add(correction(str(d)))[0] for d in range(5)]
    assert len(set(ids)) == 5
    count, page = store.page(limit=2, offset=1)
    assert count == 5 and [c.id for c in page] == sorted(ids, reverse=True)[1:3]  # newest first
    got = store.get(ids[3])
    assert got.label == "3" and got.input == correction().input and got.image == correction().image
    assert got.summary()["created"].endswith("+00:00")
    assert store.review(ids[3], "accepted").status == "accepted"
    assert store.review(ids[4], "rejected").status == "rejected"
    assert store.review(10_000, "accepted") is None and store.get(10_000) is None
    assert [c.id for c in store.page(10, 0, "accepted")[1]] == [ids[3]]
    assert [c.id for c in store.accepted_digits()] == [ids[3]]


def test_only_accepted_digits_with_an_input_go_to_training(database_url):
    store = Store(database_url)
    kept = store.add(correction("4", status="accepted"))[0]
    store.add(correction("5"))  # pending
    store.add(correction("6", status="rejected"))
    store.add(correction("not_a_digit", status="accepted"))
    blank = correction("8", status="accepted")
    blank.input = None
    store.add(blank)
    assert [c.id for c in store.accepted_digits()] == [kept]


def test_an_idempotency_key_stores_once(database_url):
    store = Store(database_url)
    first = store.add(correction(key="client-1:abc"))
    again = store.add(correction(key="client-1:abc"))
    other = store.add(correction(key="client-1:abd"))
    assert first == (first[0], True) and again == (first[0], False) and other[1] and other[0] != first[0]
    assert store.page(10, 0)[0] == 2


def _write_many(url: str, worker: int, n: int) -> list[int]:
    store = Store(url)
    return [store.add(correction(str(i % 10), key=f"w{worker}-{i}"))[0] for i in range(n)]


def test_every_worker_writing_at_once(database_url):
    """8 processes (as gunicorn workers) insert 25 each at the same time: all 200 are there, none twice."""
    Store(database_url).ensure_schema()
    with ProcessPoolExecutor(8) as pool:
        written = [i for ids in pool.map(_write_many, [database_url] * 8, range(8), [25] * 8) for i in ids]
    assert len(written) == len(set(written)) == 200
    count, page = Store(database_url).page(500, 0)
    assert count == 200 and sorted(c.id for c in page) == sorted(written)


def test_default_database_is_sqlite_in_wal_mode_under_data_dir(tmp_path):
    store = Store(default_url(str(tmp_path / "data")))
    store.ensure_schema()
    assert (tmp_path / "data" / "digits.db").is_file()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


@pytest.mark.parametrize(("option", "level"), [("", 1), ("?synchronous=full", 2), ("?synchronous=NORMAL", 1)])
def test_sqlite_commit_durability_is_chosen_in_the_url(tmp_path, option, level):
    store = Store(f"sqlite:///{tmp_path / 'digits.db'}{option}")
    store.ensure_schema()
    correction_id, _ = store.add(correction())
    assert store.get(correction_id).label == "7"  # the option is ours: SQLite's driver never sees it
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level


def test_an_unknown_sqlite_durability_is_refused(tmp_path):
    with pytest.raises(ValueError, match="synchronous"):
        Store(f"sqlite:///{tmp_path / 'digits.db'}?synchronous=off")


def test_a_database_that_is_down_is_unavailable_then_recovers(postgres):
    url = postgres.create_database("comes_and_goes")
    store = Store(url)
    store.add(correction())
    postgres.stop()
    try:
        with pytest.raises(StorageUnavailable):
            store.add(correction())
    finally:
        postgres.start()
    assert store.add(correction())[1] and store.page(10, 0)[0] == 2


def test_a_restart_between_requests_fails_none(postgres):
    # The pool's connections die with the server; the next request must not answer 503 for that (no pre-ping: the
    # Store tries once more on a fresh connection).
    store = Store(postgres.create_database("restarted"))
    store.add(correction())
    assert store.page(10, 0)[0] == 1  # a second pooled connection too
    postgres.stop()
    postgres.start()
    assert store.add(correction())[1]
    assert store.page(10, 0)[0] == 2


def test_an_unreachable_server_at_start_is_retried_later():
    from bench.server import free_port

    store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    assert store.try_schema() is False  # logged, not raised: predictions must still start
    with pytest.raises(StorageUnavailable):
        store.add(correction())
