"""webhook delivery as the outbox: queued_at and the relay's index

The request only inserts the row; the relay (jobs/relay.py) in the workers queues its job and
sets queued_at. Its query, many times a second, reads the partial index of rows not yet queued.
(No NOTIFY trigger: PostgreSQL makes commits that NOTIFY take turns, which cost about 30% of
the stored webhooks/s in bench.webhook_ingest.)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))
    # Rows recorded before this revision were queued by the request itself (or the sweeper
    # queues them): the relay starts from an empty outbox.
    op.execute("UPDATE webhook_delivery SET queued_at = received_at")
    unqueued = sa.text('queued_at IS NULL')
    op.create_index('ix_delivery_unqueued', 'webhook_delivery', ['id'], unique=False,
                    postgresql_where=unqueued, sqlite_where=unqueued)


def downgrade() -> None:
    op.drop_index('ix_delivery_unqueued', table_name='webhook_delivery')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_column('queued_at')
