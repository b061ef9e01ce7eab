"""Alembic 0007: the erasures a run applied move from its counts keys 'erased:<id>' into
run_erasures rows (SQLite and PostgreSQL), the API still shows the old keys beside the
new `erasures` list, and the downgrade puts them back."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from alembic import command

from app.api.schemas import RunOut
from app.db.models import Run
from app.db.session import alembic_config, make_engine, make_session_factory
from tests.service.test_celery import pg_url  # noqa: F401 - fixture

ER = "er_0123456789abcdef0123"


def _old_run(engine: sa.Engine, run_id: str, counts: dict) -> None:
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO runs (id, target, mode, dry_run, status, cancel_requested, stages_done, stages_total, "
                "stages, warnings, counts, created_at, attempts, lease_generation) VALUES (:id, 'default', 'INCR', "
                "false, 'SUCCESS', false, 0, 0, '[]', '[]', :counts, CURRENT_TIMESTAMP, 1, 0)"
            ),
            {"id": run_id, "counts": json.dumps(counts)},
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


def test_erased_counts_keys_become_run_erasures_rows(db_url):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0006")
    engine = make_engine(db_url)
    _old_run(engine, "r1", {"entities_processed": 7, "entities_removed_erasure": 2, f"erased:{ER}": 2})
    _old_run(engine, "r2", {"entities_processed": 3})

    command.upgrade(cfg, "head")
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT run_id, erasure_id, applied, entities_removed, lifted FROM run_erasures"))
        assert [tuple(r) for r in rows] == [("r1", ER, True, 2, False)]
    sessions = make_session_factory(engine)
    with sessions() as s:
        r1, r2 = s.get(Run, "r1"), s.get(Run, "r2")
        assert r1.counts == {"entities_processed": 7, "entities_removed_erasure": 2}
        out = RunOut.of(r1)
        assert out.counts[f"erased:{ER}"] == 2  # clients written before `erasures` still find it
        assert [(e.erasure_id, e.entities_removed, e.lifted) for e in out.erasures] == [(ER, 2, False)]
        assert RunOut.of(r2).erasures == [] and r2.counts == {"entities_processed": 3}

    command.downgrade(cfg, "0006")
    with engine.connect() as c:
        counts = c.execute(sa.text("SELECT counts FROM runs WHERE id = 'r1'")).scalar()
        counts = json.loads(counts) if isinstance(counts, str) else counts
        assert counts[f"erased:{ER}"] == 2
        assert "run_erasures" not in sa.inspect(c).get_table_names()
    engine.dispose()
