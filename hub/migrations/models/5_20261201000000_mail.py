"""E-mail: where the IMAP listener stopped in each mailbox (so a restart resumes there, and one
process at a time holds the mailbox), and the thread headers of outbound e-mail (so a manager's
reply threads under the client's message, and replies to our mail find their way back)."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "mailbox_state" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "mailbox" VARCHAR(255) NOT NULL UNIQUE,
    "uidvalidity" BIGINT,
    "last_uid" BIGINT NOT NULL DEFAULT 0,
    "owner" VARCHAR(64),
    "lease_until" TIMESTAMP,
    "updated_at" TIMESTAMP NOT NULL
) /* Where the IMAP listener stopped in one mailbox, and which process holds it. */;
ALTER TABLE "outbox" ADD "in_reply_to" VARCHAR(255);
ALTER TABLE "outbox" ADD "thread_refs" TEXT;
CREATE INDEX IF NOT EXISTS "idx_outbox_message_5b1e07" ON "outbox" ("message_id");
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "mailbox_state" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "mailbox" VARCHAR(255) NOT NULL UNIQUE,
    "uidvalidity" BIGINT,
    "last_uid" BIGINT NOT NULL DEFAULT 0,
    "owner" VARCHAR(64),
    "lease_until" TIMESTAMPTZ,
    "updated_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "mailbox_state" IS 'Where the IMAP listener stopped in one mailbox, and which process holds it.';
ALTER TABLE "outbox" ADD "in_reply_to" VARCHAR(255);
ALTER TABLE "outbox" ADD "thread_refs" TEXT;
CREATE INDEX IF NOT EXISTS "idx_outbox_message_5b1e07" ON "outbox" ("message_id");
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return (
        'DROP INDEX IF EXISTS "idx_outbox_message_5b1e07"; '
        'ALTER TABLE "outbox" DROP COLUMN "thread_refs"; '
        'ALTER TABLE "outbox" DROP COLUMN "in_reply_to"; '
        'DROP TABLE IF EXISTS "mailbox_state";'
    )
