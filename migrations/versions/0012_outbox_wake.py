"""wake a sleeping relay: a NOTIFY from webhook_delivery's INSERT, only while the relay sleeps

The relay (jobs/relay.py) polls the outbox every 50 ms while webhooks come in; after a second
of empty polls it sleeps, holding the advisory lock WAKE_LOCK (session level, exclusive).
This trigger, once per INSERT statement, tries the same lock shared for its transaction: it
fails only while the relay sleeps, and then the INSERT's commit NOTIFYs `swapline_outbox`, which
wakes the relay. While the relay is awake no commit NOTIFYs (PostgreSQL makes commits that
NOTIFY take turns: ~30% of the stored webhooks/s when every INSERT did, revision 0009), and the
shared lock taken costs the INSERT ~no time. An INSERT whose trigger ran before the relay took
the lock holds the shared lock until it commits, so the relay's lock waits for it and its next
poll sees the row: no webhook waits for the relay's timeout. PostgreSQL only (SQLite polls).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 06:00:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The two-int advisory lock key (class "swpl", object 1): jobs/relay.py WAKE_LOCK holds the
# same numbers; a migration keeps its own copy, as it must not change with the code.
_LOCK = "1937207404, 1"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE FUNCTION swapline_outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT pg_try_advisory_xact_lock_shared({_LOCK}) THEN
                PERFORM pg_notify('swapline_outbox', '');
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER webhook_delivery_wake AFTER INSERT ON webhook_delivery "
               "FOR EACH STATEMENT EXECUTE FUNCTION swapline_outbox_wake()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER webhook_delivery_wake ON webhook_delivery")
    op.execute("DROP FUNCTION swapline_outbox_wake()")
