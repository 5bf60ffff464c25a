"""An index for the sweep that ends calls whose end never arrived (hub.calls.find_stale): it
finds the few calls still ringing among all calls. The same SQL on both dialects."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQL = 'CREATE INDEX IF NOT EXISTS "idx_call_state_started" ON "call" ("state", "started_at");'


async def upgrade(db: BaseDBAsyncClient) -> str:
    return SQL


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP INDEX IF EXISTS "idx_call_state_started";'
