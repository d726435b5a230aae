"""margin: liquidation history (borrow, repay and cover post to the existing postings)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

from venue.store.models import Atoms


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('liquidations',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('equity', Atoms(), nullable=False),
    sa.Column('maintenance', Atoms(), nullable=False),
    sa.Column('covered', Atoms(), nullable=False),
    sa.Column('written_off', Atoms(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'n', name=op.f('pk_liquidations'))
    )
    with op.batch_alter_table('liquidations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_liquidations_account'), ['account'], unique=False)
        batch_op.create_index(batch_op.f('ix_liquidations_ts'), ['ts'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('liquidations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_liquidations_ts'))
        batch_op.drop_index(batch_op.f('ix_liquidations_account'))
    op.drop_table('liquidations')
