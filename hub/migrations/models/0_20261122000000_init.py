"""Initial schema. Written for both dialects the hub supports (SQLite, PostgreSQL):
aerich records it like any migration; later migrations follow the same two-dialect shape."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "manager" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "email" VARCHAR(254) UNIQUE,
    "extension" VARCHAR(32) UNIQUE,
    "phone" VARCHAR(20),
    "role" VARCHAR(16) NOT NULL /* ADMIN: admin\\nMANAGER: manager */,
    "is_active" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS "api_token" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "created_at" TIMESTAMP NOT NULL,
    "manager_id" INT NOT NULL REFERENCES "manager" ("id") ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS "client" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(300) NOT NULL,
    "status" VARCHAR(16) NOT NULL /* NEW: new\\nCOLD: cold\\nHOT: hot\\nVIP: vip\\nREGULAR: regular */,
    "custom_fields" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "last_interaction_at" TIMESTAMP,
    "activity_at" TIMESTAMP NOT NULL,
    "search" TEXT NOT NULL,
    "manager_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "merged_into_id" INT REFERENCES "client" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_client_activit_d635ef" ON "client" ("activity_at", "id");
CREATE INDEX IF NOT EXISTS "idx_client_status_35333e" ON "client" ("status", "activity_at", "id");
CREATE INDEX IF NOT EXISTS "idx_client_manager_384faa" ON "client" ("manager_id", "activity_at", "id");
CREATE TABLE IF NOT EXISTS "identity" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(20) NOT NULL,
    "value" VARCHAR(254) NOT NULL,
    "rev" VARCHAR(20),
    "created_at" TIMESTAMP NOT NULL,
    "client_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_identity_kind_81d689" UNIQUE ("kind", "value")
) /* A phone, e-mail or Telegram id; unique across the database, so it belongs to one card. */;
CREATE INDEX IF NOT EXISTS "idx_identity_rev_5009a9" ON "identity" ("rev");
CREATE INDEX IF NOT EXISTS "idx_identity_client__28a9a4" ON "identity" ("client_id");
CREATE TABLE IF NOT EXISTS "interaction" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "direction" VARCHAR(8),
    "channel" VARCHAR(32) NOT NULL,
    "occurred_at" TIMESTAMP NOT NULL,
    "status" VARCHAR(16),
    "text" TEXT NOT NULL,
    "meta" JSON NOT NULL,
    "source" VARCHAR(32),
    "external_id" VARCHAR(255),
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "author_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "client_id" INT REFERENCES "client" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_interaction_source_9f2bea" UNIQUE ("source", "external_id")
) /* One entry on a card's timeline. */;
CREATE INDEX IF NOT EXISTS "idx_interaction_client__1adae1" ON "interaction" ("client_id", "occurred_at", "id");
CREATE TABLE IF NOT EXISTS "call" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "call_id" VARCHAR(255) NOT NULL,
    "direction" VARCHAR(8) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "outcome" VARCHAR(16),
    "was_answered" INT NOT NULL,
    "remote_phone" VARCHAR(20),
    "line" VARCHAR(64),
    "extension" VARCHAR(32),
    "started_at" TIMESTAMP NOT NULL,
    "answered_at" TIMESTAMP,
    "ended_at" TIMESTAMP,
    "duration_s" INT,
    "recording_url" TEXT,
    "events" JSON NOT NULL,
    "client_id" INT REFERENCES "client" ("id") ON DELETE CASCADE,
    "interaction_id" BIGINT NOT NULL REFERENCES "interaction" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_call_source_061c6b" UNIQUE ("source", "call_id")
) /* One row per provider call id; the lifecycle state only moves forward. */;
CREATE INDEX IF NOT EXISTS "idx_call_client__18fe59" ON "call" ("client_id");
CREATE TABLE IF NOT EXISTS "merge" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "moved" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "undone_at" TIMESTAMP,
    "by_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "merged_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE,
    "survivor_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE
) /* A recorded merge: what moved from `merged` to `survivor`, so it can be undone. */;
CREATE TABLE IF NOT EXISTS "processed_event" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "external_id" VARCHAR(255) NOT NULL,
    "event" VARCHAR(32) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    CONSTRAINT "uid_processed_e_source_854b42" UNIQUE ("source", "external_id", "event")
) /* Idempotency: one row per (source, external id, event) ever ingested. */;
CREATE TABLE IF NOT EXISTS "reminder" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "due_at" TIMESTAMP NOT NULL,
    "text" TEXT NOT NULL,
    "status" VARCHAR(16) NOT NULL /* PENDING: pending\\nFIRED: fired\\nDONE: done */,
    "origin" VARCHAR(32) NOT NULL,
    "count" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "fired_at" TIMESTAMP,
    "done_at" TIMESTAMP,
    "client_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE,
    "manager_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_reminder_status_cc3755" ON "reminder" ("status", "due_at");
CREATE INDEX IF NOT EXISTS "idx_reminder_client__67e44e" ON "reminder" ("client_id", "status");
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);

-- text search: an FTS5 trigram index over client.search (substring LIKE uses it)
CREATE VIRTUAL TABLE IF NOT EXISTS client_fts USING fts5(
    search, content='client', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS client_fts_insert AFTER INSERT ON client BEGIN
    INSERT INTO client_fts(rowid, search) VALUES (new.id, new.search);
END;
CREATE TRIGGER IF NOT EXISTS client_fts_delete AFTER DELETE ON client BEGIN
    INSERT INTO client_fts(client_fts, rowid, search) VALUES ('delete', old.id, old.search);
END;
CREATE TRIGGER IF NOT EXISTS client_fts_update AFTER UPDATE OF search ON client BEGIN
    INSERT INTO client_fts(client_fts, rowid, search) VALUES ('delete', old.id, old.search);
    INSERT INTO client_fts(rowid, search) VALUES (new.id, new.search);
END;
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "manager" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(200) NOT NULL,
    "email" VARCHAR(254) UNIQUE,
    "extension" VARCHAR(32) UNIQUE,
    "phone" VARCHAR(20),
    "role" VARCHAR(16) NOT NULL,
    "is_active" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON COLUMN "manager"."role" IS 'ADMIN: admin\\nMANAGER: manager';
CREATE TABLE IF NOT EXISTS "api_token" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "created_at" TIMESTAMPTZ NOT NULL,
    "manager_id" INT NOT NULL REFERENCES "manager" ("id") ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS "client" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(300) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "custom_fields" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "last_interaction_at" TIMESTAMPTZ,
    "activity_at" TIMESTAMPTZ NOT NULL,
    "search" TEXT NOT NULL,
    "manager_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "merged_into_id" INT REFERENCES "client" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_client_activit_d635ef" ON "client" ("activity_at", "id");
CREATE INDEX IF NOT EXISTS "idx_client_status_35333e" ON "client" ("status", "activity_at", "id");
CREATE INDEX IF NOT EXISTS "idx_client_manager_384faa" ON "client" ("manager_id", "activity_at", "id");
COMMENT ON COLUMN "client"."status" IS 'NEW: new\\nCOLD: cold\\nHOT: hot\\nVIP: vip\\nREGULAR: regular';
CREATE TABLE IF NOT EXISTS "identity" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(20) NOT NULL,
    "value" VARCHAR(254) NOT NULL,
    "rev" VARCHAR(20),
    "created_at" TIMESTAMPTZ NOT NULL,
    "client_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_identity_kind_81d689" UNIQUE ("kind", "value")
);
CREATE INDEX IF NOT EXISTS "idx_identity_rev_5009a9" ON "identity" ("rev");
CREATE INDEX IF NOT EXISTS "idx_identity_client__28a9a4" ON "identity" ("client_id");
COMMENT ON TABLE "identity" IS 'A phone, e-mail or Telegram id; unique across the database, so it belongs to one card.';
CREATE TABLE IF NOT EXISTS "interaction" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(16) NOT NULL,
    "direction" VARCHAR(8),
    "channel" VARCHAR(32) NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "status" VARCHAR(16),
    "text" TEXT NOT NULL,
    "meta" JSONB NOT NULL,
    "source" VARCHAR(32),
    "external_id" VARCHAR(255),
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "author_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "client_id" INT REFERENCES "client" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_interaction_source_9f2bea" UNIQUE ("source", "external_id")
);
CREATE INDEX IF NOT EXISTS "idx_interaction_client__1adae1" ON "interaction" ("client_id", "occurred_at", "id");
COMMENT ON TABLE "interaction" IS 'One entry on a card''s timeline.';
CREATE TABLE IF NOT EXISTS "call" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "source" VARCHAR(32) NOT NULL,
    "call_id" VARCHAR(255) NOT NULL,
    "direction" VARCHAR(8) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "outcome" VARCHAR(16),
    "was_answered" BOOL NOT NULL,
    "remote_phone" VARCHAR(20),
    "line" VARCHAR(64),
    "extension" VARCHAR(32),
    "started_at" TIMESTAMPTZ NOT NULL,
    "answered_at" TIMESTAMPTZ,
    "ended_at" TIMESTAMPTZ,
    "duration_s" INT,
    "recording_url" TEXT,
    "events" JSONB NOT NULL,
    "client_id" INT REFERENCES "client" ("id") ON DELETE CASCADE,
    "interaction_id" BIGINT NOT NULL REFERENCES "interaction" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_call_source_061c6b" UNIQUE ("source", "call_id")
);
CREATE INDEX IF NOT EXISTS "idx_call_client__18fe59" ON "call" ("client_id");
COMMENT ON TABLE "call" IS 'One row per provider call id; the lifecycle state only moves forward.';
CREATE TABLE IF NOT EXISTS "merge" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "moved" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "undone_at" TIMESTAMPTZ,
    "by_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "merged_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE,
    "survivor_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE
);
COMMENT ON TABLE "merge" IS 'A recorded merge: what moved from `merged` to `survivor`, so it can be undone.';
CREATE TABLE IF NOT EXISTS "processed_event" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "source" VARCHAR(32) NOT NULL,
    "external_id" VARCHAR(255) NOT NULL,
    "event" VARCHAR(32) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    CONSTRAINT "uid_processed_e_source_854b42" UNIQUE ("source", "external_id", "event")
);
COMMENT ON TABLE "processed_event" IS 'Idempotency: one row per (source, external id, event) ever ingested.';
CREATE TABLE IF NOT EXISTS "reminder" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "due_at" TIMESTAMPTZ NOT NULL,
    "text" TEXT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "origin" VARCHAR(32) NOT NULL,
    "count" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "fired_at" TIMESTAMPTZ,
    "done_at" TIMESTAMPTZ,
    "client_id" INT NOT NULL REFERENCES "client" ("id") ON DELETE CASCADE,
    "manager_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_reminder_status_cc3755" ON "reminder" ("status", "due_at");
CREATE INDEX IF NOT EXISTS "idx_reminder_client__67e44e" ON "reminder" ("client_id", "status");
COMMENT ON COLUMN "reminder"."status" IS 'PENDING: pending\\nFIRED: fired\\nDONE: done';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);

-- text search: pg_trgm makes LIKE '%...%' on client.search an index scan; without the
-- extension (no privilege to create it) search still works, only slower
DO $$ BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available: text search will scan';
END $$;
DO $$ BEGIN
    CREATE INDEX IF NOT EXISTS client_search_trgm ON client USING gin (search gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'no trigram index on client.search';
END $$;
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return ""
