"""deployment bindings: one active smith binding per conversation, one catch-all per kind, revoked
reason and time; a schedule may name the deployment its replies go to

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import models.types
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_BINDING = "target_type = 'smith' AND status = 'active'"
LIVE_CATCH_ALL = "target_type = 'agent' AND status <> 'revoked'"


def upgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revoked_reason', sa.String(length=64), nullable=True))
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deployment_id', sa.String(length=40), nullable=True))
    # Deleted deployments are revoked ones that stay listed.
    op.execute("UPDATE deployment SET revoked_at = deleted_at, revoked_reason = 'deleted' "
               "WHERE deleted_at IS NOT NULL AND revoked_at IS NULL")
    # Before the constraints: where a conversation had two live bindings (a second deep link used to
    # leave both active), the latest bound one is what the person chose; the others are replaced.
    op.execute(
        "UPDATE deployment SET status = 'revoked', revoked_reason = 'replaced', revoked_at = CURRENT_TIMESTAMP "
        f"WHERE {LIVE_BINDING} AND EXISTS (SELECT 1 FROM deployment AS newer WHERE newer.project_id = "
        "deployment.project_id AND newer.kind = deployment.kind AND newer.address = deployment.address AND "
        "newer.target_type = 'smith' AND newer.status = 'active' AND newer.id > deployment.id)")
    op.execute(
        "UPDATE deployment SET status = 'revoked', revoked_reason = 'replaced', revoked_at = CURRENT_TIMESTAMP "
        f"WHERE {LIVE_CATCH_ALL} AND EXISTS (SELECT 1 FROM deployment AS older WHERE older.project_id = "
        "deployment.project_id AND older.kind = deployment.kind AND older.target_type = 'agent' AND "
        "older.status <> 'revoked' AND older.id < deployment.id)")
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.create_index('uq_deployment_live_binding', ['project_id', 'kind', 'address'], unique=True,
                              sqlite_where=sa.text(LIVE_BINDING), postgresql_where=sa.text(LIVE_BINDING))
        batch_op.create_index('uq_deployment_live_catch_all', ['project_id', 'kind'], unique=True,
                              sqlite_where=sa.text(LIVE_CATCH_ALL), postgresql_where=sa.text(LIVE_CATCH_ALL))


def downgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.drop_index('uq_deployment_live_catch_all')
        batch_op.drop_index('uq_deployment_live_binding')
        batch_op.drop_column('revoked_reason')
        batch_op.drop_column('revoked_at')
    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.drop_column('deployment_id')
