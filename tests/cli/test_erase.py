"""`idr erase`: record an erasure by key or identifier, bad input in one line with exit 2,
the next run applies it, --show reports which run."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.db.models import AuditEvent
from app.db.session import make_engine, make_session_factory, session_scope
from app.platforms.duckdb import DuckDBAdapter


def test_idr_erase(cli, demo_db, tmp_path):
    path, _ = demo_db
    db = ("--db", str(path))
    with DuckDBAdapter.from_path(str(path)) as a:
        key = a.scalar("SELECT min(entity_key) FROM idr_out.identity_resolved_membership_current")
    for args, says in (
        ((), "--key"),
        (("--key", key, "--identifier", "EMAIL=a@b.c"), "--key"),
        (("--identifier", "EMAIL"), "TYPE=VALUE"),
        (("--identifier", "SHOE=1"), "SHOE"),
        (("--key", "nocolon"), "table_id"),
    ):
        r = cli("erase", *args, *db)
        assert r.exit_code == 2, (args, r.output)
        assert says in r.stderr and len(r.stderr.strip().splitlines()) <= 2 and "Traceback" not in r.stderr
    r = cli("erase", "--key", key, *db)
    assert r.exit_code == 0, r.output
    erasure_id = re.search(r"erasure (er_[0-9a-f]+)", r.stdout).group(1)
    # In the service's audit trail like an API request: who and what kind, never the key.
    with session_scope(make_session_factory(make_engine(f"sqlite:///{tmp_path}/state.db"))) as s:
        events = [(e.action, e.subject, e.actor, e.diff) for e in s.scalars(select(AuditEvent))]
    assert [(a, subj) for a, subj, _, _ in events] == [("erasure.request", erasure_id)]
    assert events[0][2].startswith("cli:") and key not in str(events[0][3])
    assert "PENDING" in cli("erase", "--show", erasure_id, *db).stdout
    r = cli("run", "--mode", "INCR", *db)
    assert r.exit_code == 0, r.output
    shown = cli("erase", "--show", erasure_id, *db).stdout
    assert "APPLIED" in shown and "1 removed" in shown
    with DuckDBAdapter.from_path(str(path)) as a:
        assert not a.fetchall(
            "SELECT 1 FROM idr_out.identity_resolved_membership_current WHERE entity_key = $k", {"k": key}
        )
    r = cli("erase", "--show", "er_00000000000000000000", *db)
    assert r.exit_code == 2 and "no erasure" in r.stderr
