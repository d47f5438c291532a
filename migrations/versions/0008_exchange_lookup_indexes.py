"""exchange: indexes for the Ongoing webhook's question "is this order one we run?"

(shop_domain, ongoing_order_id) finds an exchange order, (shop_domain, order_name) the original
order of an open exchange; one indexed lookup per notice (models/exchange.py
concerns_ongoing_order), so a notice about any other order is answered without storing it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# Plain CREATE INDEX on both databases (no table copy on SQLite: recreate='never').
def upgrade() -> None:
    with op.batch_alter_table('exchange', schema=None, recreate='never') as batch_op:
        batch_op.create_index('ix_exchange_shop_ongoing_order_id',
                              ['shop_domain', 'ongoing_order_id'], unique=False)
        batch_op.create_index('ix_exchange_shop_order_name',
                              ['shop_domain', 'order_name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('exchange', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_exchange_shop_order_name')
        batch_op.drop_index('ix_exchange_shop_ongoing_order_id')
