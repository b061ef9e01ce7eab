"""webhooks: room for encrypted signing secrets (Fernet tokens are longer than the plain
secret; existing plain secrets are encrypted at start-up, app.services.secretbox), and the
claim a sending worker holds on a delivery

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as b:
        b.alter_column("secret", existing_type=sa.String(length=128), type_=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("webhook_deliveries") as b:
        b.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as b:
        b.drop_column("claimed_until")
    with op.batch_alter_table("webhooks") as b:
        b.alter_column("secret", existing_type=sa.Text(), type_=sa.String(length=128), existing_nullable=False)
