"""shipping defaults for exchange orders whose original is not in Ongoing

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

COLUMNS = ('default_transporter_code', 'default_transporter_service_code',
           'default_way_of_delivery')


def upgrade() -> None:
    with op.batch_alter_table('shop_settings', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('shop_settings', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
