"""message history index: (thread_id, run_id, id) replaces (thread_id, id), so the agent loop reads a
thread's recent messages, grouped by run, as one index range without sorting the thread

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_thread_id')
        batch_op.create_index('ix_message_thread_run', ['thread_id', 'run_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_thread_run')
        batch_op.create_index('ix_message_thread_id', ['thread_id', 'id'], unique=False)
