"""webhook delivery as the outbox: queued_at, the relay's index, and (PostgreSQL) a NOTIFY on insert

The request only inserts the row; the relay (jobs/relay.py) in the workers queues its job and
sets queued_at. Its query reads the partial index of rows not yet queued. On PostgreSQL a trigger
wakes the relay (NOTIFY swapline_delivery) at the inserting transaction's commit, at no extra
round trip for the request; SQLite has no NOTIFY, the relay polls there.

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

NOTIFY_FUNCTION = """
CREATE FUNCTION swapline_delivery_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('swapline_delivery', '');
    RETURN NULL;
END $$
"""
# FOR EACH STATEMENT: one notice per insert statement (the request inserts one row); identical
# notices of one transaction are folded into one by PostgreSQL.
NOTIFY_TRIGGER = """
CREATE TRIGGER swapline_delivery_inserted AFTER INSERT ON webhook_delivery
FOR EACH STATEMENT EXECUTE FUNCTION swapline_delivery_notify()
"""


def upgrade() -> None:
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))
    # Rows recorded before this revision were queued by the request itself (or the sweeper
    # queues them): the relay starts from an empty outbox.
    op.execute("UPDATE webhook_delivery SET queued_at = received_at")
    unqueued = sa.text('queued_at IS NULL')
    op.create_index('ix_delivery_unqueued', 'webhook_delivery', ['id'], unique=False,
                    postgresql_where=unqueued, sqlite_where=unqueued)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER swapline_delivery_inserted ON webhook_delivery")
        op.execute("DROP FUNCTION swapline_delivery_notify()")
    op.drop_index('ix_delivery_unqueued', table_name='webhook_delivery')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_column('queued_at')
