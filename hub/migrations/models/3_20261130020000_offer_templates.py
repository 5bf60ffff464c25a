"""Offer templates written by admins (hub.offers): every version of every language variant is
kept; the newest of a name and language is the one in use."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "offer_template" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "language" VARCHAR(16) NOT NULL DEFAULT '',
    "version" INT NOT NULL,
    "subject" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "html" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "author_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_offer_templ_name_5c1e2a" UNIQUE ("name", "language", "version")
) /* One version of one language variant of an offer template, written by an admin. */;
CREATE INDEX IF NOT EXISTS "idx_offer_templ_author__7b3d10" ON "offer_template" ("author_id");
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "offer_template" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(64) NOT NULL,
    "language" VARCHAR(16) NOT NULL DEFAULT '',
    "version" INT NOT NULL,
    "subject" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "html" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "author_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_offer_templ_name_5c1e2a" UNIQUE ("name", "language", "version")
);
CREATE INDEX IF NOT EXISTS "idx_offer_templ_author__7b3d10" ON "offer_template" ("author_id");
COMMENT ON TABLE "offer_template" IS 'One version of one language variant of an offer template, written by an admin.';
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP TABLE IF EXISTS "offer_template";'
