"""MCP caller tokens: a token scoped to one MCP deployment

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_LIVE = "revoked_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deployment_id', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_api_token_deployment_id'), ['deployment_id'], unique=False)
        batch_op.create_index('uq_api_token_deployment_subject', ['deployment_id', 'subject'], unique=True,
                              sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))


def downgrade() -> None:
    op.execute("DELETE FROM api_token WHERE kind = 'mcp'")  # caller tokens mean nothing without their deployment
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index('uq_api_token_deployment_subject')
        batch_op.drop_index(batch_op.f('ix_api_token_deployment_id'))
        batch_op.drop_column('deployment_id')
