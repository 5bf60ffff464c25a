"""Outbound mail the hub writes by itself (a reminder to a manager) says so in an
Auto-Submitted header (RFC 3834), so that nobody's autoresponder answers it; an offer names the
files that go with it (read from the templates folder when the mail is sent)."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return ('ALTER TABLE "outbox" ADD "auto_submitted" BOOL NOT NULL DEFAULT FALSE; '
            'ALTER TABLE "outbox" ADD "attachments" TEXT;')


async def downgrade(db: BaseDBAsyncClient) -> str:
    return ('ALTER TABLE "outbox" DROP COLUMN "attachments"; '
            'ALTER TABLE "outbox" DROP COLUMN "auto_submitted";')
