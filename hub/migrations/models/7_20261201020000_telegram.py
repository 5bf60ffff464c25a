"""Telegram: what the hub knows of each private chat with the bot (blocked or reachable, since
when; whether the bot asked for the phone), one-time deep-link tokens (a manager links their
own account; a client's chat is bound to their card), and the manager's linked account."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "telegram_chat" (
    "user_id" BIGINT NOT NULL PRIMARY KEY,
    "status" VARCHAR(16) NOT NULL DEFAULT 'member',
    "status_at" TIMESTAMP,
    "asked_phone_at" TIMESTAMP,
    "language" VARCHAR(16),
    "updated_at" TIMESTAMP NOT NULL
) /* A private chat with the bot: reachable or blocked, and what the bot already asked. */;
CREATE TABLE IF NOT EXISTS "link_token" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "kind" VARCHAR(16) NOT NULL,
    "target_id" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "used_at" TIMESTAMP,
    "used_by" BIGINT
) /* A one-time Telegram deep-link token: binds a chat to a card or a manager. */;
ALTER TABLE "manager" ADD "telegram_user_id" BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS "uid_manager_telegra_5d2c90" ON "manager" ("telegram_user_id");
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "telegram_chat" (
    "user_id" BIGINT NOT NULL PRIMARY KEY,
    "status" VARCHAR(16) NOT NULL DEFAULT 'member',
    "status_at" TIMESTAMPTZ,
    "asked_phone_at" TIMESTAMPTZ,
    "language" VARCHAR(16),
    "updated_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "telegram_chat" IS 'A private chat with the bot: reachable or blocked, and what the bot already asked.';
CREATE TABLE IF NOT EXISTS "link_token" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "kind" VARCHAR(16) NOT NULL,
    "target_id" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "used_at" TIMESTAMPTZ,
    "used_by" BIGINT
);
COMMENT ON TABLE "link_token" IS 'A one-time Telegram deep-link token: binds a chat to a card or a manager.';
ALTER TABLE "manager" ADD "telegram_user_id" BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS "uid_manager_telegra_5d2c90" ON "manager" ("telegram_user_id");
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return (
        'DROP INDEX IF EXISTS "uid_manager_telegra_5d2c90"; '
        'ALTER TABLE "manager" DROP COLUMN "telegram_user_id"; '
        'DROP TABLE IF EXISTS "link_token"; DROP TABLE IF EXISTS "telegram_chat";'
    )
