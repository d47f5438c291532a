"""exchanges and their timeline

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:30:31.676689
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('exchange',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('return_gid', sa.String(length=100), nullable=False),
    sa.Column('return_name', sa.String(length=100), nullable=True),
    sa.Column('order_gid', sa.String(length=100), nullable=False),
    sa.Column('order_name', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('attention_reason', sa.Text(), nullable=True),
    sa.Column('attention_step', sa.String(length=32), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('returned_items', sa.JSON(), nullable=False),
    sa.Column('workflow', sa.String(length=16), nullable=True),
    sa.Column('ongoing_order_id', sa.Integer(), nullable=True),
    sa.Column('ongoing_order_number', sa.String(length=100), nullable=True),
    sa.Column('ongoing_return_order_id', sa.Integer(), nullable=True),
    sa.Column('ongoing_status', sa.Integer(), nullable=True),
    sa.Column('line_item_gids', sa.JSON(), nullable=False),
    sa.Column('fulfillment_order_gid', sa.String(length=100), nullable=True),
    sa.Column('hold_gid', sa.String(length=100), nullable=True),
    sa.Column('fulfillment_gid', sa.String(length=100), nullable=True),
    sa.Column('tracking_number', sa.String(length=255), nullable=True),
    sa.Column('tracking_url', sa.Text(), nullable=True),
    sa.Column('tracking_company', sa.String(length=255), nullable=True),
    sa.Column('balance', sa.String(length=32), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('collection', sa.String(length=32), nullable=True),
    sa.Column('collected_amount', sa.String(length=32), nullable=True),
    sa.Column('payment_reference', sa.String(length=255), nullable=True),
    sa.Column('release_reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fulfilled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shop_domain', 'return_gid', name='uq_exchange_return')
    )
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchange_shop_domain'), ['shop_domain'], unique=False)
        batch_op.create_index(batch_op.f('ix_exchange_state'), ['state'], unique=False)

    op.create_table('exchange_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exchange_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('exchange_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchange_event_exchange_id'), ['exchange_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('exchange_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchange_event_exchange_id'))

    op.drop_table('exchange_event')
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchange_state'))
        batch_op.drop_index(batch_op.f('ix_exchange_shop_domain'))

    op.drop_table('exchange')

