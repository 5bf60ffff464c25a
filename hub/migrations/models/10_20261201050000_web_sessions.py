"""The manager web UI's login (hub.passwords, hub.sessions): a manager's password hash and
chosen UI language, and their browser sessions. A session row keeps only the SHA-256 of its
cookie, so a copy of the database opens no session; expired ones are found by `expires_at`."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
ALTER TABLE "manager" ADD COLUMN "password_hash" VARCHAR(255);
ALTER TABLE "manager" ADD COLUMN "language" VARCHAR(8);
CREATE TABLE IF NOT EXISTS "web_session" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "manager_id" INT NOT NULL REFERENCES "manager" ("id") ON DELETE CASCADE,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "csrf" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "last_seen_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "user_agent" VARCHAR(255)
) /* A manager's browser session of the web UI; only the hash of its cookie is kept. */;
CREATE INDEX IF NOT EXISTS "idx_web_session_expires_a50fc4" ON "web_session" ("expires_at");
CREATE INDEX IF NOT EXISTS "idx_web_session_manager_f67718" ON "web_session" ("manager_id");
"""

POSTGRES = """
ALTER TABLE "manager" ADD COLUMN IF NOT EXISTS "password_hash" VARCHAR(255);
ALTER TABLE "manager" ADD COLUMN IF NOT EXISTS "language" VARCHAR(8);
CREATE TABLE IF NOT EXISTS "web_session" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "manager_id" INT NOT NULL REFERENCES "manager" ("id") ON DELETE CASCADE,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "csrf" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "last_seen_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "user_agent" VARCHAR(255)
);
COMMENT ON TABLE "web_session" IS 'A manager''s browser session of the web UI; only the hash of its cookie is kept.';
CREATE INDEX IF NOT EXISTS "idx_web_session_expires_a50fc4" ON "web_session" ("expires_at");
CREATE INDEX IF NOT EXISTS "idx_web_session_manager_f67718" ON "web_session" ("manager_id");
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return ('DROP TABLE IF EXISTS "web_session"; '
            'ALTER TABLE "manager" DROP COLUMN "language"; '
            'ALTER TABLE "manager" DROP COLUMN "password_hash";')
