"""console sign-in attempts, kept across restarts and processes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signin_attempt',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('signin_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_attempt_last_failure_at'), ['last_failure_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signin_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_attempt_last_failure_at'))

    op.drop_table('signin_attempt')
