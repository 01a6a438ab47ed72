"""provider_app: apps minted at a provider for one smith (dedicated Slack apps, SL-3)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provider_app',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('integration_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('smith_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('public', sa.JSON(), nullable=False),
    sa.Column('secrets_ciphertext', sa.Text(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('integration_id', 'external_id', name='uq_provider_app_external')
    )
    with op.batch_alter_table('provider_app', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_app_integration_id'), ['integration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_provider_app_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provider_app', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_app_project_id'))
        batch_op.drop_index(batch_op.f('ix_provider_app_integration_id'))

    op.drop_table('provider_app')
