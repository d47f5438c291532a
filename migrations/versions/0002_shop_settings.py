"""shop settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 22:13:06.275424
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('shop_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('ongoing_server', sa.String(length=63), nullable=False),
    sa.Column('ongoing_warehouse', sa.String(length=100), nullable=True),
    sa.Column('goods_owner_id', sa.Integer(), nullable=True),
    sa.Column('ongoing_username', sa.String(length=100), nullable=True),
    sa.Column('ongoing_password_enc', sa.Text(), nullable=True),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.Column('warehouse_name', sa.String(length=255), nullable=True),
    sa.Column('order_status_open', sa.Integer(), nullable=True),
    sa.Column('order_status_returned', sa.Integer(), nullable=True),
    sa.Column('order_status_released', sa.Integer(), nullable=True),
    sa.Column('order_status_sent', sa.Integer(), nullable=True),
    sa.Column('return_status_notified', sa.Integer(), nullable=True),
    sa.Column('return_status_returned', sa.Integer(), nullable=True),
    sa.Column('webhook_key', sa.String(length=64), nullable=False),
    sa.Column('webhook_token_enc', sa.Text(), nullable=True),
    sa.Column('events_secret_enc', sa.Text(), nullable=True),
    sa.Column('instant_exchange', sa.Boolean(), nullable=False),
    sa.Column('notify_customer', sa.Boolean(), nullable=False),
    sa.Column('order_number_prefix', sa.String(length=20), nullable=False),
    sa.Column('connection_ok_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_ongoing_webhook_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shop.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shop_id'),
    sa.UniqueConstraint('webhook_key')
    )



def downgrade() -> None:

    op.drop_table('shop_settings')

