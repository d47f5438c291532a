"""exchange signals: queued events kept until applied; transient needs_attention

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 01:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attention_transient', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table('exchange_signal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exchange_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('exchange_signal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchange_signal_exchange_id'), ['exchange_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exchange_signal_done_at'), ['done_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('exchange_signal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchange_signal_done_at'))
        batch_op.drop_index(batch_op.f('ix_exchange_signal_exchange_id'))
    op.drop_table('exchange_signal')
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.drop_column('attention_transient')
