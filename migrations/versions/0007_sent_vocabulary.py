"""one word per concept: the event `shipped` is `sent` (Ongoing's word), the step `ship` is
`fulfil`, and exchange.shipped_at is exchange.sent_at

Rewrites the stored values: queued signals (exchange_signal.event), the failed event a
needs-attention exchange keeps for Retry (exchange.attention_step, "<state>:<event>") and the
timeline rows that name the event or the step (exchange_event).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# (old, new) for the upgrade; the downgrade swaps them. Plain SQL that SQLite and PostgreSQL share.
EVENT = ('shipped', 'sent')
STEP = ('ship', 'fulfil')


def _run(sql: str, **values) -> None:
    op.execute(sa.text(sql).bindparams(**values))


def _rewrite(event: tuple[str, str], step: tuple[str, str]) -> None:
    (old_event, new_event), _ = event, step
    _run("UPDATE exchange_signal SET event = :new WHERE event = :old",
         old=old_event, new=new_event)
    _run("UPDATE exchange SET attention_step = substr(attention_step, 1, "
         "length(attention_step) - :cut) || :new WHERE attention_step LIKE :pattern",
         cut=len(old_event), new=new_event, pattern=f"%:{old_event}")
    for old, new in (event, step):
        _run("UPDATE exchange_event SET name = :new WHERE name = :old", old=old, new=new)
        _run("UPDATE exchange_event SET detail = replace(detail, :old_step, :new_step) "
             "WHERE detail LIKE :pattern", old_step=f'"step": "{old}"',
             new_step=f'"step": "{new}"', pattern=f'%"step": "{old}"%')
        _run("UPDATE exchange_event SET outcome = :prefix || substr(outcome, :rest) "
             "WHERE kind = 'transition' AND outcome LIKE :pattern",
             prefix=f"{new}: ", rest=len(old) + 3, pattern=f"{old}: %")


# recreate='never': SQLite renames the column in place (RENAME COLUMN, SQLite 3.25+). Copying the
# table instead would drop the old one, and with foreign keys on that cascades to every signal and
# timeline row of every exchange.
def upgrade() -> None:
    _rewrite(EVENT, STEP)
    with op.batch_alter_table('exchange', schema=None, recreate='never') as batch_op:
        batch_op.alter_column('shipped_at', new_column_name='sent_at')


def downgrade() -> None:
    with op.batch_alter_table('exchange', schema=None, recreate='never') as batch_op:
        batch_op.alter_column('sent_at', new_column_name='shipped_at')
    _rewrite(EVENT[::-1], STEP[::-1])
