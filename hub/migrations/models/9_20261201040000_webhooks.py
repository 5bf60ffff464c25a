"""Outgoing webhooks (hub.outgoing, hub.delivery): the admins' subscriptions, the events the
hub reports (written in the same transaction as the change each reports) and one delivery of
an event to a subscription, with its attempts. A trigger makes the deliveries of each new event
(one per subscription that wants its type), so the statement that records an event is the same
on both databases and runs inside the change's transaction."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQLITE = """
CREATE TABLE IF NOT EXISTS "webhook" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "url" VARCHAR(2000) NOT NULL,
    "topics" TEXT NOT NULL,
    "description" VARCHAR(200) NOT NULL DEFAULT '',
    "secret" VARCHAR(128) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "paused_reason" TEXT,
    "failing_since" TIMESTAMP,
    "retry_at" TIMESTAMP,
    "lease_owner" VARCHAR(64),
    "lease_until" TIMESTAMP,
    "created_by_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL
) /* A subscription of another system to the hub's events. */;
CREATE TABLE IF NOT EXISTS "webhook_event" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "type" VARCHAR(64) NOT NULL,
    "payload" TEXT NOT NULL,
    "occurred_at" TIMESTAMP NOT NULL,
    "created_at" TIMESTAMP NOT NULL
) /* Something the hub reports, as it was when it happened. */;
CREATE INDEX IF NOT EXISTS "idx_webhook_ev_created_5d0c1e" ON "webhook_event" ("created_at");
CREATE TABLE IF NOT EXISTS "webhook_delivery" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "webhook_id" INT NOT NULL REFERENCES "webhook" ("id") ON DELETE CASCADE,
    "event_id" BIGINT NOT NULL REFERENCES "webhook_event" ("id") ON DELETE CASCADE,
    "status" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL DEFAULT 0,
    "first_attempt_at" TIMESTAMP,
    "last_attempt_at" TIMESTAMP,
    "next_attempt_at" TIMESTAMP,
    "last_status" INT,
    "last_error" TEXT,
    "delivered_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL
) /* One event on its way to one subscription. */;
CREATE INDEX IF NOT EXISTS "idx_webhook_de_queue_7a41b2"
    ON "webhook_delivery" ("webhook_id", "status", "event_id");
CREATE INDEX IF NOT EXISTS "idx_webhook_de_event_2c8e90" ON "webhook_delivery" ("event_id");
CREATE TRIGGER IF NOT EXISTS "webhook_event_fan_out" AFTER INSERT ON "webhook_event"
WHEN NEW."type" <> 'webhook.ping'
BEGIN
    INSERT INTO "webhook_delivery" ("webhook_id", "event_id", "status", "attempts",
                                    "created_at", "updated_at")
    SELECT w."id", NEW."id", 'pending', 0, NEW."created_at", NEW."created_at"
    FROM "webhook" w
    WHERE w."topics" = ',*,' OR instr(w."topics", ',' || NEW."type" || ',') > 0
    ORDER BY w."id";
END;
"""

POSTGRES = """
CREATE TABLE IF NOT EXISTS "webhook" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "url" VARCHAR(2000) NOT NULL,
    "topics" TEXT NOT NULL,
    "description" VARCHAR(200) NOT NULL DEFAULT '',
    "secret" VARCHAR(128) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "paused_reason" TEXT,
    "failing_since" TIMESTAMPTZ,
    "retry_at" TIMESTAMPTZ,
    "lease_owner" VARCHAR(64),
    "lease_until" TIMESTAMPTZ,
    "created_by_id" INT REFERENCES "manager" ("id") ON DELETE SET NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "webhook" IS 'A subscription of another system to the hub''s events.';
CREATE TABLE IF NOT EXISTS "webhook_event" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "type" VARCHAR(64) NOT NULL,
    "payload" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "webhook_event" IS 'Something the hub reports, as it was when it happened.';
CREATE INDEX IF NOT EXISTS "idx_webhook_ev_created_5d0c1e" ON "webhook_event" ("created_at");
CREATE TABLE IF NOT EXISTS "webhook_delivery" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "webhook_id" INT NOT NULL REFERENCES "webhook" ("id") ON DELETE CASCADE,
    "event_id" BIGINT NOT NULL REFERENCES "webhook_event" ("id") ON DELETE CASCADE,
    "status" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL DEFAULT 0,
    "first_attempt_at" TIMESTAMPTZ,
    "last_attempt_at" TIMESTAMPTZ,
    "next_attempt_at" TIMESTAMPTZ,
    "last_status" INT,
    "last_error" TEXT,
    "delivered_at" TIMESTAMPTZ,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "webhook_delivery" IS 'One event on its way to one subscription.';
CREATE INDEX IF NOT EXISTS "idx_webhook_de_queue_7a41b2"
    ON "webhook_delivery" ("webhook_id", "status", "event_id");
CREATE INDEX IF NOT EXISTS "idx_webhook_de_event_2c8e90" ON "webhook_delivery" ("event_id");
CREATE OR REPLACE FUNCTION "webhook_event_fan_out"() RETURNS trigger AS $fan_out$
BEGIN
    INSERT INTO "webhook_delivery" ("webhook_id", "event_id", "status", "attempts",
                                    "created_at", "updated_at")
    SELECT w."id", NEW."id", 'pending', 0, NEW."created_at", NEW."created_at"
    FROM "webhook" w
    WHERE w."topics" = ',*,' OR strpos(w."topics", ',' || NEW."type" || ',') > 0
    ORDER BY w."id";
    RETURN NULL;
END;
$fan_out$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS "webhook_event_fan_out" ON "webhook_event";
CREATE TRIGGER "webhook_event_fan_out" AFTER INSERT ON "webhook_event"
FOR EACH ROW WHEN (NEW."type" <> 'webhook.ping') EXECUTE FUNCTION "webhook_event_fan_out"();
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return POSTGRES if db.capabilities.dialect == "postgres" else SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    drop = ('DROP TABLE IF EXISTS "webhook_delivery"; DROP TABLE IF EXISTS "webhook_event"; '
            'DROP TABLE IF EXISTS "webhook";')
    if db.capabilities.dialect == "postgres":
        drop += ' DROP FUNCTION IF EXISTS "webhook_event_fan_out"();'
    return drop
