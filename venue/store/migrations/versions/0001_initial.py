"""initial schema: history, access and audit

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa

from venue.store.models import Atoms  # a stable column type: exact integers on every backend


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('firm', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Integer(), nullable=False),
    sa.Column('maker_ppm', sa.Integer(), nullable=False),
    sa.Column('taker_ppm', sa.Integer(), nullable=False),
    sa.Column('stp', sa.Integer(), nullable=False),
    sa.Column('leverage', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account', name=op.f('pk_accounts'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_firm'), ['firm'], unique=False)

    op.create_table('assets',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('decimals', sa.Integer(), nullable=False),
    sa.Column('defined_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_assets'))
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('operator', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('args', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_operator'), ['operator'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_ts'), ['ts'], unique=False)

    op.create_table('credentials',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'n', name=op.f('pk_credentials'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credentials_subject'), ['subject'], unique=False)

    op.create_table('entitlements',
    sa.Column('comp_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('comp_id', 'kind', 'subject', name=op.f('pk_entitlements'))
    )
    op.create_table('executions',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('exec_n', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Integer(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('cl_ord_id', sa.String(length=128), nullable=False),
    sa.Column('orig_cl_ord_id', sa.String(length=128), nullable=False),
    sa.Column('cum_qty', sa.BigInteger(), nullable=False),
    sa.Column('leaves_qty', sa.BigInteger(), nullable=False),
    sa.Column('last_px', sa.BigInteger(), nullable=False),
    sa.Column('last_qty', sa.BigInteger(), nullable=False),
    sa.Column('fee', Atoms(), nullable=False),
    sa.Column('liquidity', sa.Integer(), nullable=False),
    sa.Column('trade_n', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'exec_n', name=op.f('pk_executions'))
    )
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_executions_order_id'), ['order_id'], unique=False)

    op.create_table('firms',
    sa.Column('firm', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('firm', name=op.f('pk_firms'))
    )
    op.create_table('fundings',
    sa.Column('funding_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('asset', sa.String(length=32), nullable=False),
    sa.Column('amount', Atoms(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_ts', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('funding_id', name=op.f('pk_fundings'))
    )
    with op.batch_alter_table('fundings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fundings_account'), ['account'], unique=False)

    op.create_table('instruments',
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('base', sa.String(length=32), nullable=False),
    sa.Column('quote', sa.String(length=32), nullable=False),
    sa.Column('tick_size', sa.String(length=40), nullable=False),
    sa.Column('lot_size', sa.String(length=40), nullable=False),
    sa.Column('notional_mult', sa.BigInteger(), nullable=False),
    sa.Column('base_per_lot', Atoms(), nullable=False),
    sa.Column('min_qty', sa.BigInteger(), nullable=False),
    sa.Column('max_qty', sa.BigInteger(), nullable=False),
    sa.Column('min_notional', Atoms(), nullable=False),
    sa.Column('max_notional', Atoms(), nullable=False),
    sa.Column('market_band_ppm', sa.Integer(), nullable=False),
    sa.Column('halted', sa.Boolean(), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=False),
    sa.Column('defined_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('symbol', name=op.f('pk_instruments'))
    )
    op.create_table('order_rejects',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('exec_n', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('cl_ord_id', sa.String(length=128), nullable=False),
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('code', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'exec_n', name=op.f('pk_order_rejects'))
    )
    with op.batch_alter_table('order_rejects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_rejects_account'), ['account'], unique=False)

    op.create_table('orders',
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('firm', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('side', sa.Integer(), nullable=False),
    sa.Column('ord_type', sa.Integer(), nullable=False),
    sa.Column('tif', sa.Integer(), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('stop_px', sa.BigInteger(), nullable=False),
    sa.Column('qty', sa.BigInteger(), nullable=False),
    sa.Column('display_qty', sa.BigInteger(), nullable=False),
    sa.Column('cl_ord_id', sa.String(length=128), nullable=False),
    sa.Column('session', sa.String(length=64), nullable=False),
    sa.Column('entered_ts', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('cum_qty', sa.BigInteger(), nullable=False),
    sa.Column('leaves_qty', sa.BigInteger(), nullable=False),
    sa.Column('cum_notional', Atoms(), nullable=False),
    sa.Column('cum_fee', Atoms(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_ts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_account'), ['account'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_entered_ts'), ['entered_ts'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_symbol'), ['symbol'], unique=False)

    op.create_table('postings',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('asset', sa.String(length=32), nullable=False),
    sa.Column('amount', Atoms(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'n', name=op.f('pk_postings'))
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postings_account'), ['account'], unique=False)
        batch_op.create_index(batch_op.f('ix_postings_ts'), ['ts'], unique=False)

    op.create_table('sessions',
    sa.Column('comp_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('firm', sa.String(length=64), nullable=False),
    sa.Column('user', sa.String(length=64), nullable=False),
    sa.Column('target_comp_id', sa.String(length=64), nullable=False),
    sa.Column('default_account', sa.String(length=64), nullable=False),
    sa.Column('cancel_on_disconnect', sa.Boolean(), nullable=False),
    sa.Column('msg_rate', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('comp_id', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_firm'), ['firm'], unique=False)

    op.create_table('store_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('genesis_ts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_state'))
    )
    op.create_table('trades',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('trade_n', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('symbol', sa.String(length=64), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('qty', sa.BigInteger(), nullable=False),
    sa.Column('aggressor_side', sa.Integer(), nullable=False),
    sa.Column('maker_order_id', sa.BigInteger(), nullable=False),
    sa.Column('taker_order_id', sa.BigInteger(), nullable=False),
    sa.Column('maker_account', sa.String(length=64), nullable=False),
    sa.Column('taker_account', sa.String(length=64), nullable=False),
    sa.Column('maker_fee', Atoms(), nullable=False),
    sa.Column('taker_fee', Atoms(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'trade_n', name=op.f('pk_trades'))
    )
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trades_maker_account'), ['maker_account'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_symbol'), ['symbol'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_taker_account'), ['taker_account'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_ts'), ['ts'], unique=False)

    op.create_table('users',
    sa.Column('user', sa.String(length=64), nullable=False),
    sa.Column('firm', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('user', name=op.f('pk_users'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_firm'), ['firm'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_firm'))

    op.drop_table('users')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trades_ts'))
        batch_op.drop_index(batch_op.f('ix_trades_taker_account'))
        batch_op.drop_index(batch_op.f('ix_trades_symbol'))
        batch_op.drop_index(batch_op.f('ix_trades_maker_account'))

    op.drop_table('trades')
    op.drop_table('store_state')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_firm'))

    op.drop_table('sessions')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postings_ts'))
        batch_op.drop_index(batch_op.f('ix_postings_account'))

    op.drop_table('postings')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_symbol'))
        batch_op.drop_index(batch_op.f('ix_orders_entered_ts'))
        batch_op.drop_index(batch_op.f('ix_orders_account'))

    op.drop_table('orders')
    with op.batch_alter_table('order_rejects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_rejects_account'))

    op.drop_table('order_rejects')
    op.drop_table('instruments')
    with op.batch_alter_table('fundings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fundings_account'))

    op.drop_table('fundings')
    op.drop_table('firms')
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_order_id'))

    op.drop_table('executions')
    op.drop_table('entitlements')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credentials_subject'))

    op.drop_table('credentials')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_ts'))
        batch_op.drop_index(batch_op.f('ix_audit_log_operator'))

    op.drop_table('audit_log')
    op.drop_table('assets')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_firm'))

    op.drop_table('accounts')
