"""shop_settings.exchange_tag: the tag Swapline puts on a Shopify order when it creates an
exchange, so the merchant's own Shopify→Ongoing connector can leave that order alone

Revision ID: 0011
Revises: 0008 (0009 and 0010 are being written on other branches; whoever merges last points
this at the newest of them)
Create Date: 2026-12-10 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('shop_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exchange_tag', sa.String(length=40), nullable=False,
                                      server_default='swapline-exchange'))


def downgrade() -> None:
    with op.batch_alter_table('shop_settings', schema=None) as batch_op:
        batch_op.drop_column('exchange_tag')
