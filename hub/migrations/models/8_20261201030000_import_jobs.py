"""Imports started through the API run in the background; their progress and report live
here, so any hub process can answer for them."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "import_job" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "file_name" VARCHAR(255) NOT NULL,
    "dry_run" INT NOT NULL DEFAULT 0,
    "expected" INT,
    "done" INT NOT NULL DEFAULT 0,
    "report" JSON,
    "error" TEXT,
    "by_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "created_at" TIMESTAMP NOT NULL,
    "finished_at" TIMESTAMP
) /* A client import started through the API: its progress and report. */;
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "import_job" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "status" VARCHAR(16) NOT NULL,
    "file_name" VARCHAR(255) NOT NULL,
    "dry_run" BOOL NOT NULL DEFAULT FALSE,
    "expected" INT,
    "done" INT NOT NULL DEFAULT 0,
    "report" JSONB,
    "error" TEXT,
    "by_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "finished_at" TIMESTAMPTZ
);
COMMENT ON TABLE "import_job" IS 'A client import started through the API: its progress and report.';
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP TABLE IF EXISTS "import_job";'
