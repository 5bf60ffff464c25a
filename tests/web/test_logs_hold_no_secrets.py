"""Secrets and message bodies never reach the logs: a hub configured with distinctive secrets
(telephony signing secret, e-mail inbound token, an SMTP password, a Telegram bot token and
webhook secret) is driven through real HTTP flows, good and bad (signed and wrongly signed call
webhooks, an inbound e-mail, a wrong X-Hub-Token, a wrong Bearer token, a note, an offer sent
through the outbox to a real SMTP server that asks for the password, a Telegram message the bot
answers through the Bot API, a new manager's token), with every logger captured at DEBUG; then
no record's message, exception text or stack may hold any of them.

Each secret is its own test case (the flows are replayed per case), so a leak fails - or is
marked as a known leak - exactly where it is, without hiding the others."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from hub.outbox import OUTBOX
from tests.helpers import call_body, sign
from tests.smtpserver import FROM, SmtpServer
from tests.telegram_fake import BOT_ID, FakeBotAPI, load_fixture
from tests.web.test_templates_api import call, new_card

TELEPHONY_SECRET = "Tel3phonySecret-QUARTZ-7731"
WRONG_TELEPHONY_SECRET = "Wr0ngSignSecret-BASALT-5520"
EMAIL_INBOUND_TOKEN = "InboundMailToken-OBSIDIAN-9043"
WRONG_EMAIL_TOKEN = "BadHubToken-GRANITE-1188"
SMTP_USER = "mailer-JASPER"
SMTP_PASSWORD = "S3cretPass-MARBLE-6402"
BOT_TOKEN = f"{BOT_ID}:ABCdefGHIjklMNOpqrSTUvwx-TOPAZ_2291"
TG_WEBHOOK_SECRET = "TgHookSecret-ONYX-3357"
WRONG_BEARER = "WrongBearerToken-SLATE-8816"

MAIL_SUBJECT = "Subject line about the AMETHYST procurement"
MAIL_SENTENCE = "Our vault combination is periwinkle-armadillo-4417, keep it quiet."
NOTE_TEXT = "Note: the client whispered the code word CHRYSOPRASE-5093"
MAIL_LOCAL_PART = "zanzibar.quokka.7781"
MAIL_SENDER = f"{MAIL_LOCAL_PART}@example.org"
OFFER_LOCAL_PART = "yellowstone.marmot.2264"
OFFER_ADDRESS = f"{OFFER_LOCAL_PART}@example.net"

FIXED = {
    "telephony secret": TELEPHONY_SECRET,
    "wrong telephony secret": WRONG_TELEPHONY_SECRET,
    "e-mail inbound token": EMAIL_INBOUND_TOKEN,
    "wrong X-Hub-Token": WRONG_EMAIL_TOKEN,
    "SMTP password": SMTP_PASSWORD,
    "Telegram bot token": BOT_TOKEN,
    "Telegram bot token secret part": BOT_TOKEN.split(":", 1)[1],
    "Telegram webhook secret": TG_WEBHOOK_SECRET,
    "wrong Bearer token": WRONG_BEARER,
    "e-mail subject": MAIL_SUBJECT,
    "e-mail body sentence": MAIL_SENTENCE,
    "note text": NOTE_TEXT,
    "sender's e-mail local part": MAIL_LOCAL_PART,
    "offer recipient's e-mail local part": OFFER_LOCAL_PART,
}
# known at run time only: the API tokens of the fixtures' managers and of the one created via API
RUNTIME = ("admin API token", "manager API token", "created manager's API token",
           "Telegram message text")


class AuthSmtpServer(SmtpServer):
    """The shared aiosmtpd server, but offering AUTH without TLS and accepting any login, so an
    `smtp://user:password@...` URL is really used; keeps the logins it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[str, str]] = []

    def _accept(self, server: Any, session: Any, envelope: Any, mechanism: str,
                auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port,
                                     auth_require_tls=False, authenticator=self._accept)
        self.controller.start()


@pytest.fixture
def auth_smtp() -> Iterator[AuthSmtpServer]:
    server = AuthSmtpServer()
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API, knowing this test's own bot token."""
    fake = FakeBotAPI(token=BOT_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


def _from_test_servers(record: logging.LogRecord) -> bool:
    """Records of the test's own stand-ins, not of the hub: aiosmtpd (`mail.*`) and the fake Bot
    API's access log (its routes are /bot<TOKEN>/..., which the hub does not have)."""
    if record.name.startswith("mail."):
        return True
    message = record.getMessage()
    return record.name == "aiohttp.access" and ("/bot" in message or "/file/bot" in message)


def _record_texts(record: logging.LogRecord) -> list[str]:
    """Everything a handler could write for a record: the message, exception and stack."""
    texts = [record.getMessage(), record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


async def _drive(make_client: Any, smtp: AuthSmtpServer, bot_api: FakeBotAPI,
                 admin: dict[str, Any], manager: dict[str, Any]) -> dict[str, str]:
    """Every flow, good and bad; the run-time secrets by name."""
    smtp_url = f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}"
    client = await make_client(
        telephony={"generic": {"secret": TELEPHONY_SECRET}},
        email={"inbound_token": EMAIL_INBOUND_TOKEN, "smtp_url": smtp_url, "from_address": FROM},
        telegram={"bot_token": BOT_TOKEN, "webhook_secret": TG_WEBHOOK_SECRET,
                  "api_base": bot_api.url},
        public_base_url="https://crm.example.test",
        company={"name": "ООО «Ромашка»"},
    )

    # telephony: a signed call, then one signed with the wrong secret
    body = call_body("ringing", "leak-call-1", phone="+79161234567")
    resp = await client.post("/webhooks/telephony/generic", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, TELEPHONY_SECRET)})
    assert resp.status == 200, await resp.text()
    bad = call_body("ringing", "leak-call-2", phone="+79161234568")
    resp = await client.post("/webhooks/telephony/generic", data=bad, headers={
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(bad, WRONG_TELEPHONY_SECRET)})
    assert resp.status == 401, await resp.text()

    # e-mail in: accepted with the token, refused with a wrong one
    raw = ("\r\n".join([
        f"From: Zanzibar Quokka <{MAIL_SENDER}>", "To: sales@example.test",
        f"Subject: {MAIL_SUBJECT}", "Date: Mon, 30 Nov 2026 10:00:00 +0300",
        "Message-ID: <leak-1@example.org>", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
    ]) + "\r\n\r\n" + MAIL_SENTENCE + "\r\n").encode()
    resp = await client.post("/webhooks/email", data=raw, headers={
        "Content-Type": "message/rfc822", "X-Hub-Token": EMAIL_INBOUND_TOKEN})
    assert resp.status == 200, await resp.text()
    resp = await client.post("/webhooks/email", data=raw, headers={
        "Content-Type": "message/rfc822", "X-Hub-Token": WRONG_EMAIL_TOKEN})
    assert resp.status == 401, await resp.text()

    # the manager API with a wrong Bearer token
    resp = await client.get("/api/clients", headers={"Authorization": f"Bearer {WRONG_BEARER}"})
    assert resp.status == 401, await resp.text()

    # a note, then an offer sent by e-mail through the outbox (the SMTP server asks for the login)
    card = await new_card(client, manager, name="Zanzibar Quokka", emails=[OFFER_ADDRESS])
    await call(client, manager, "POST", f"/api/clients/{card['id']}/notes", {"text": NOTE_TEXT},
               201)
    entry = await call(client, manager, "POST", f"/api/clients/{card['id']}/offers",
                       {"template": "price", "channel": "email"}, 202)
    assert await client.server.app[OUTBOX].run_pass() == 1
    assert smtp.logins == [(SMTP_USER, SMTP_PASSWORD)]
    [sent] = smtp.sink.received
    assert sent["To"] == OFFER_ADDRESS and sent["Subject"] == entry["text"]

    # Telegram: a private message in (wrong secret refused), the bot answers via the Bot API
    [update] = load_fixture("private_text")
    for secret, status in ((TG_WEBHOOK_SECRET, 200), ("not-the-secret", 401)):
        resp = await client.post("/webhooks/telegram", data=json.dumps(update), headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
        assert resp.status == status, await resp.text()
    await client.server.app[OUTBOX].run_pass()
    assert bot_api.sent(update["message"]["from"]["id"]), "the bot never used its token"

    # a manager created through the API: the token is in the answer, once
    created = await call(client, admin, "POST", "/api/managers",
                         {"name": "Pyotr", "email": "pyotr@example.com"}, 201)
    return {"admin API token": admin["token"], "manager API token": manager["token"],
            "created manager's API token": created["token"],
            "Telegram message text": update["message"]["text"]}


# The drivers' statement logs write every SQL statement with its values at DEBUG; the hub keeps
# them at INFO (hub.db.STATEMENT_LOGGERS), so nothing it stores reaches the logs that way either.
QUERY_LOGGERS = frozenset({"tortoise.db_client", "aiosqlite", "asyncpg"})


@pytest.mark.parametrize("what", [*FIXED, *RUNTIME])
async def test_no_secret_or_body_in_any_log_record(
    what: str, caplog: pytest.LogCaptureFixture, make_client: Any, auth_smtp: AuthSmtpServer,
    bot_api: FakeBotAPI, admin: dict[str, Any], manager: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    needles = {**FIXED, **await _drive(make_client, auth_smtp, bot_api, admin, manager)}
    records = [r for r in caplog.records if not _from_test_servers(r)]
    assert any(r.name.startswith("hub") for r in records), "the hub's logs were not captured"
    needle = needles[what]
    leaking = [r for r in records if any(needle in text for text in _record_texts(r))]
    elsewhere = [r for r in leaking if r.name not in QUERY_LOGGERS]
    assert not elsewhere, f"the {what} reached the logs:\n" + "\n".join(
        f"{r.name} {r.levelname}: {r.getMessage()[:300]!r}" for r in elsewhere)
    assert not leaking, f"the {what} reached the ORM's query log:\n" + "\n".join(
        f"{r.name} {r.levelname}: {r.getMessage()[:300]!r}" for r in leaking)
