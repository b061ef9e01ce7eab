"""run_erasures: the erasures a run applied or lifted, as rows (were counts keys 'erased:<id>')

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ERASED = "erased:"  # the key prefix runs.counts used


def upgrade() -> None:
    op.create_table(
        "run_erasures",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("erasure_id", sa.String(length=32), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("entities_removed", sa.Integer(), nullable=False),
        sa.Column("lifted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "erasure_id"),
    )
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("counts", sa.JSON))
    rows = sa.table(
        "run_erasures",
        sa.column("run_id", sa.String),
        sa.column("erasure_id", sa.String),
        sa.column("applied", sa.Boolean),
        sa.column("entities_removed", sa.Integer),
        sa.column("lifted", sa.Boolean),
    )
    bind = op.get_bind()
    for run_id, counts in bind.execute(sa.select(runs.c.id, runs.c.counts)).all():
        erased = {k[len(ERASED) :]: v for k, v in (counts or {}).items() if k.startswith(ERASED)}
        if not erased:
            continue
        bind.execute(
            rows.insert(),
            [
                {"run_id": run_id, "erasure_id": e, "applied": True, "entities_removed": int(n or 0), "lifted": False}
                for e, n in sorted(erased.items())
            ],
        )
        kept = {k: v for k, v in counts.items() if not k.startswith(ERASED)}
        bind.execute(runs.update().where(runs.c.id == run_id).values(counts=kept))


def downgrade() -> None:
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("counts", sa.JSON))
    rows = sa.table(
        "run_erasures",
        sa.column("run_id", sa.String),
        sa.column("erasure_id", sa.String),
        sa.column("applied", sa.Boolean),
        sa.column("entities_removed", sa.Integer),
    )
    bind = op.get_bind()
    back: dict[str, dict[str, int]] = {}
    for run_id, e, n in bind.execute(
        sa.select(rows.c.run_id, rows.c.erasure_id, rows.c.entities_removed).where(rows.c.applied)
    ).all():
        back.setdefault(run_id, {})[f"{ERASED}{e}"] = int(n or 0)
    for run_id, extra in back.items():
        counts = bind.execute(sa.select(runs.c.counts).where(runs.c.id == run_id)).scalar() or {}
        bind.execute(runs.update().where(runs.c.id == run_id).values(counts={**counts, **extra}))
    op.drop_table("run_erasures")
