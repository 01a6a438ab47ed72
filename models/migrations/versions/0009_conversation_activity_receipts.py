"""conversation_activity (a person's last message per conversation: WhatsApp's 24-hour window) and
delivery receipts on outbox entries (sent, delivered, read), found by the provider's message id

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('conversation_activity',
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('last_inbound_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('project_id', 'kind', 'address')
    )
    with op.batch_alter_table('outbox_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receipt', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('receipt_at', models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_provider_message', ['kind', 'provider_message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_provider_message')
        batch_op.drop_column('receipt_at')
        batch_op.drop_column('receipt')
    op.drop_table('conversation_activity')
