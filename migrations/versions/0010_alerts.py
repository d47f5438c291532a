"""alerts: the shop's alert settings, the exchange's return dates, alerts and their messages

One open alert per exchange and condition is a partial unique index (resolved_at IS NULL), so
a resolved alert may be opened again later.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-29 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

STALL_DAYS = (('stall_parked_days', 14), ('stall_released_days', 2),
              ('stall_uncollected_days', 1), ('stall_not_returned_days', 7))
EXCHANGE_DATES = ('return_closed_at', 'returned_in_ongoing_at')


def upgrade() -> None:
    with op.batch_alter_table('shop_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_emails', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('alert_webhook_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('alert_resolved', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        for name, days in STALL_DAYS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False,
                                          server_default=str(days)))
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        for name in EXCHANGE_DATES:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('exchange_id', sa.Integer(), nullable=False),
    sa.Column('condition', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index('ix_alert_shop_domain', ['shop_domain'], unique=False)
        batch_op.create_index('ix_alert_exchange_id', ['exchange_id'], unique=False)
        batch_op.create_index('uq_alert_open', ['exchange_id', 'condition'], unique=True,
                              sqlite_where=sa.text('resolved_at IS NULL'),
                              postgresql_where=sa.text('resolved_at IS NULL'))
    op.create_table('alert_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('digest', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('alert_id', 'channel', 'event', name='uq_alert_message')
    )
    with op.batch_alter_table('alert_message', schema=None) as batch_op:
        batch_op.create_index('ix_alert_message_alert_id', ['alert_id'], unique=False)
        batch_op.create_index('ix_alert_message_shop_domain', ['shop_domain'], unique=False)
        batch_op.create_index('ix_alert_message_sent_at', ['sent_at'], unique=False)


def downgrade() -> None:
    op.drop_table('alert_message')
    op.drop_table('alert')
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        for name in reversed(EXCHANGE_DATES):
            batch_op.drop_column(name)
    with op.batch_alter_table('shop_settings', schema=None) as batch_op:
        for name, _ in reversed(STALL_DAYS):
            batch_op.drop_column(name)
        batch_op.drop_column('alert_resolved')
        batch_op.drop_column('alert_webhook_url')
        batch_op.drop_column('alert_emails')
