"""webhook delivery: X-Shopify-Event-Id, one delivery per (source, shop, topic, event)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 16:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows recorded before this revision, and other sources, have no event id; NULLs
    # never clash in the unique index on PostgreSQL or SQLite.
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.String(length=255), nullable=True))
        batch_op.create_index('uq_delivery_event',
                              ['source', 'shop_domain', 'topic', 'event_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index('uq_delivery_event')
        batch_op.drop_column('event_id')
