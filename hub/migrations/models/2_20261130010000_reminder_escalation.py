"""When an overdue reminder was escalated to the admins (hub.scheduler): each is escalated
once, whichever hub process gets to it."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    if db.capabilities.dialect == "postgres":
        return 'ALTER TABLE "reminder" ADD COLUMN IF NOT EXISTS "escalated_at" TIMESTAMPTZ;'
    return 'ALTER TABLE "reminder" ADD COLUMN "escalated_at" TIMESTAMP;'


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'ALTER TABLE "reminder" DROP COLUMN "escalated_at";'
