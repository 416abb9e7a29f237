"""The PostgreSQL pool behind `database_url` gives every case a database equal to a newly
migrated one: rows, sequence positions and all. A reused database that were not emptied
would let one test's rows decide another's outcome."""
from sqlalchemy import create_engine, text

from tests.support import postgres

TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"


def contents(url: str) -> dict:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            tables = sorted(r[0] for r in c.execute(text(TABLES)))
            rows = {t: sorted(map(repr, c.execute(text(f'SELECT * FROM "{t}"')))) for t in tables}
            seqs = sorted(c.execute(text("SELECT sequencename, last_value FROM pg_sequences")))
            return {"rows": rows, "sequences": seqs}
    finally:
        engine.dispose()


def scribble(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO clients (name, used_bytes, wrapped_key, created_at, "
                           "key_id) VALUES ('acme', 0, 'x', 0, 'k')"))
            c.execute(text("UPDATE audit_head SET count = 7"))
    finally:
        engine.dispose()


def test_a_returned_database_is_emptied_back_to_a_new_one():
    pool = postgres.MigratedPool()
    try:
        with pool.lease() as first:
            new = contents(first)
            scribble(first)
            assert contents(first) != new
        with pool.lease() as second:
            assert second == first                  # reused, not made again
            assert contents(second) == new
    finally:
        pool.close()


def test_a_database_changed_in_shape_is_dropped_not_reused():
    pool = postgres.MigratedPool()
    try:
        with pool.lease() as first:
            engine = create_engine(first)
            with engine.begin() as c:
                c.execute(text("ALTER TABLE clients ADD COLUMN extra integer"))
            engine.dispose()
        with pool.lease() as second:
            assert second != first
            assert "extra" not in repr(contents(second))
    finally:
        pool.close()
