"""The outbox of outbound messages (hub.outbox): offers are queued here in the same transaction
as their timeline entry and sent by the background worker."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "outbox" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "interaction_id" BIGINT NOT NULL REFERENCES "interaction" ("id") ON DELETE CASCADE,
    "channel" VARCHAR(16) NOT NULL,
    "to_address" VARCHAR(320) NOT NULL,
    "subject" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "html" TEXT,
    "message_id" VARCHAR(255) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP NOT NULL,
    "last_error" TEXT,
    "sent_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL
) /* One outbound message waiting to be sent, being sent, sent or failed. */;
CREATE INDEX IF NOT EXISTS "idx_outbox_status_3f9a21" ON "outbox" ("status", "next_attempt_at");
CREATE INDEX IF NOT EXISTS "idx_outbox_interac_8c2d47" ON "outbox" ("interaction_id");
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "outbox" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "interaction_id" BIGINT NOT NULL REFERENCES "interaction" ("id") ON DELETE CASCADE,
    "channel" VARCHAR(16) NOT NULL,
    "to_address" VARCHAR(320) NOT NULL,
    "subject" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "html" TEXT,
    "message_id" VARCHAR(255) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ NOT NULL,
    "last_error" TEXT,
    "sent_at" TIMESTAMPTZ,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_outbox_status_3f9a21" ON "outbox" ("status", "next_attempt_at");
CREATE INDEX IF NOT EXISTS "idx_outbox_interac_8c2d47" ON "outbox" ("interaction_id");
COMMENT ON TABLE "outbox" IS 'One outbound message waiting to be sent, being sent, sent or failed.';
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP TABLE IF EXISTS "outbox";'
