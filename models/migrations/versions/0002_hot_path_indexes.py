"""hot-path indexes: run (thread_id, status, id) and outbox_entry (kind, address, status, id) for the
per-conversation ordering checks of the run claim and the outbox; run_event loses the run_id index
that its unique (run_id, seq) index makes redundant

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index('ix_run_thread_status', ['thread_id', 'status', 'id'], unique=False)
        batch_op.drop_index(batch_op.f('ix_run_thread_id'))
    with op.batch_alter_table('run_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_event_run_id'))
    with op.batch_alter_table('outbox_entry', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_conversation', ['kind', 'address', 'status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_conversation')
    with op.batch_alter_table('run_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_event_run_id'), ['run_id'], unique=False)
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_thread_id'), ['thread_id'], unique=False)
        batch_op.drop_index('ix_run_thread_status')
