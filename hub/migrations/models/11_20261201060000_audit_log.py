"""Data protection (hub.privacy): the audit log of who did what to whom, e.g. an admin exporting
or erasing a client's personal data. A row holds ids, counts and reasons only, never the personal
data or message bodies it is about, so the log survives the erasure it records."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "audit_log" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "at" TIMESTAMP NOT NULL,
    "manager_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "action" VARCHAR(64) NOT NULL,
    "target_type" VARCHAR(32) NOT NULL,
    "target_id" BIGINT,
    "detail" JSON NOT NULL
) /* Who did what to which object: ids, counts and reasons, never personal data. */;
CREATE INDEX IF NOT EXISTS "idx_audit_log_target_3f9a21" ON "audit_log" ("target_type", "target_id");
CREATE INDEX IF NOT EXISTS "idx_audit_log_at_8c12d4" ON "audit_log" ("at");
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "audit_log" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "at" TIMESTAMPTZ NOT NULL,
    "manager_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "action" VARCHAR(64) NOT NULL,
    "target_type" VARCHAR(32) NOT NULL,
    "target_id" BIGINT,
    "detail" JSONB NOT NULL
);
COMMENT ON TABLE "audit_log" IS 'Who did what to which object: ids, counts and reasons, never personal data.';
CREATE INDEX IF NOT EXISTS "idx_audit_log_target_3f9a21" ON "audit_log" ("target_type", "target_id");
CREATE INDEX IF NOT EXISTS "idx_audit_log_at_8c12d4" ON "audit_log" ("at");
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP TABLE IF EXISTS "audit_log";'
