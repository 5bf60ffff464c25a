"""The call-back rule (hub.reminders) reads a client's calls by time: their latest connected call,
then the missed calls after it. An index on (client_id, started_at) answers both from the
newest call down, however many calls the client has had; it also serves every lookup the
index on client_id alone did, so that one goes. The same SQL on both dialects."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQL = """
CREATE INDEX IF NOT EXISTS "idx_call_client_started" ON "call" ("client_id", "started_at");
DROP INDEX IF EXISTS "idx_call_client__18fe59";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return SQL


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
CREATE INDEX IF NOT EXISTS "idx_call_client__18fe59" ON "call" ("client_id");
DROP INDEX IF EXISTS "idx_call_client_started";
"""
