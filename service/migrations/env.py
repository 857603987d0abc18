"""Alembic's environment: migrate the connection service/storage.py hands over, or DATABASE_URL's database."""

from __future__ import annotations

from alembic import context

from service.storage import Base, make_engine

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode re-creates the table instead
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # the `alembic` command line, e.g. `alembic revision --autogenerate` with -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with make_engine(url).connect() as conn:
        run(conn)
        conn.commit()
