"""Settings: TOML file, overridden by HUB_* environment variables, validated at start-up.

The environment name of a setting is `HUB_` + its path joined by `_` in upper case
(`[email] smtp_url` ↔ `HUB_EMAIL_SMTP_URL`, `[telephony.generic] secret` ↔
`HUB_TELEPHONY_GENERIC_SECRET`); a list setting given in the environment is comma-separated,
and an empty variable counts as unset.
Precedence: explicit overrides > environment > file > default. Unknown keys in the file, bad
values and malformed TOML are errors that name the key (and the value, unless it is a secret).
Nothing here reads settings lazily, and no repr shows a secret.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hub.errors import ConfigError

ENV_PREFIX = "HUB_"
DEFAULT_CONFIG_PATH = Path("config/hub.toml")
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg")
# provider keys that hold credentials: masked in error messages and in repr
SECRET_WORDS = ("secret", "token", "key", "salt", "password", "auth")


class Section(BaseModel):
    """A strict settings table: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailSettings(Section):
    inbound_token: SecretStr | None = None
    smtp_url: SecretStr | None = None
    imap_url: SecretStr | None = None
    from_address: str | None = None
    form_senders: tuple[str, ...] = ()
    # subjects (any part, any case) that mark a mail as a web-site form, whoever sent it
    form_subjects: tuple[str, ...] = ()
    # after a message is on its card: leave it as it was (default), mark it \Seen, or move it
    imap_mark_seen: bool = False
    imap_move_to: str | None = Field(default=None, min_length=1, max_length=200)
    # an IDLE is renewed this often; a server without IDLE is polled this often
    imap_idle_seconds: int = Field(default=120, ge=5, le=1500)
    imap_poll_seconds: int = Field(default=30, ge=1, le=3600)
    # messages larger than this are recorded by their headers only
    imap_max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=65536)

    @field_validator("form_senders", "form_subjects", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("form_subjects")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(item.strip().lower() for item in value if item.strip())

    @field_validator("form_senders")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            _check_address(item)
        return tuple(item.strip().lower() for item in value)

    @field_validator("from_address")
    @classmethod
    def _from_address(cls, value: str | None) -> str | None:
        return _check_address(value) if value else None

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret_url(value, ("smtp", "smtps"))

    @field_validator("imap_url")
    @classmethod
    def _imap_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret_url(value, ("imap", "imaps"))


class TelegramSettings(Section):
    bot_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    api_base: str = "https://api.telegram.org"
    # how updates arrive: "webhook" (Telegram posts to {public_base_url}/webhooks/telegram),
    # "polling" (the hub asks, for installs without a public HTTPS address), or "auto":
    # webhook when webhook_secret and public_base_url are set, else polling
    mode: Literal["auto", "webhook", "polling"] = "auto"
    # the bot asks a new client once, politely, to share their phone number
    ask_phone: bool = True
    ask_phone_text: str = Field(
        default="Здравствуйте! Чтобы менеджер мог вам перезвонить, поделитесь, пожалуйста, "
                "номером телефона — кнопка ниже.", min_length=1, max_length=4096)
    ask_phone_button: str = Field(default="Отправить номер", min_length=1, max_length=64)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        """@BotFather's tokens are `<digits>:<characters>`; anything else is refused here, at
        start-up, not by the bot library in the middle of it."""
        if value is None:
            return None
        left, sep, right = value.get_secret_value().partition(":")
        if not sep or not left.isdigit() or not right or any(c.isspace() for c in right):
            raise ValueError("must look like 123456789:AAE... (the token from @BotFather)")
        return value

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)


class WebhookSettings(Section):
    """Outgoing webhooks (hub.delivery): how long and how often a failing delivery is tried."""

    # a delivery failing this long (from its first attempt) is given up and its
    # subscription paused; the admins are told
    retry_hours: float = Field(default=72.0, gt=0, le=30 * 24)
    # one attempt's deadline: connecting, sending and the receiver's answer
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # the wait after the n-th failure: backoff_seconds * 2^(n-1), at most backoff_cap_seconds
    backoff_seconds: float = Field(default=10.0, gt=0, le=3600)
    backoff_cap_seconds: float = Field(default=3600.0, gt=0, le=24 * 3600)
    # delivered and failed deliveries (and events nobody waits for) are kept this long
    keep_days: int = Field(default=30, ge=1, le=3650)


class CompanySettings(Section):
    """What offers say about the company (`company` in an offer template)."""

    name: str = Field(default="", max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = None
    website: str | None = None

    @field_validator("name", "phone")
    @classmethod
    def _stripped(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _check_address(value) if value else None

    @field_validator("website")
    @classmethod
    def _website(cls, value: str | None) -> str | None:
        return check_http_url(value) if value else None


class Settings(Section):
    database_url: str = "sqlite://./hub.db"
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    phone_region: str = "RU"
    # the time zone the web UI shows times in (an IANA name such as Europe/Moscow)
    timezone: str = "UTC"
    public_base_url: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # a guard against overload, not a throttle: at 1,000 events/s on SQLite, bursts passed 64
    max_inflight_webhooks: int = Field(default=256, ge=1, le=100_000)
    # requests a second one address may send to one provider's webhook, per hub process, with
    # bursts of twice that (a retry storm or a runaway PBX gets 429 + Retry-After); 0: no limit
    webhook_rate_per_source: int = Field(default=1000, ge=0, le=1_000_000)
    log_level: str = "INFO"
    # a call still ringing this long after it began is taken as ended unanswered: a provider
    # lost its end, and a missed call must still open its call-back reminder
    stale_call_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # a fired reminder nobody has marked done this long after it fell due goes to the admins
    reminder_escalate_minutes: int = Field(default=60, ge=1, le=30 * 24 * 60)
    # `[telephony.<provider>]` tables, validated by each adapter's Config (channels.build_registry)
    telephony: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)
    email: EmailSettings = Field(default_factory=EmailSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    company: CompanySettings = Field(default_factory=CompanySettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme not in DATABASE_SCHEMES:
            raise ValueError(
                "not a database URL; use sqlite://./hub.db or postgres://user:pass@host:5432/db"
            )
        return value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("unknown region; use a two-letter country code such as RU")
        return region

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone; use an IANA name such as Europe/Moscow") from None
        return value.strip()

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        return check_http_url(value) if value else None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return level

    def provider(self, name: str) -> dict[str, Any]:
        """The raw `[telephony.<name>]` table (empty when not configured)."""
        return dict(self.telephony.get(name, {}))

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "database_url" else value
        # provider tables hold plain secrets: show only which keys are set
        yield "telephony", {name: sorted(table) for name, table in self.telephony.items()}


def split_list(value: Any) -> Any:
    """A list setting given as one string (the environment's form) is comma-separated."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and repr."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "***"


def env_name(*path: str) -> str:
    """The environment variable of a setting path: ("email", "smtp_url") → HUB_EMAIL_SMTP_URL."""
    return ENV_PREFIX + "_".join(path).upper()


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the TOML file (if any), apply HUB_* overrides, then explicit overrides."""
    env = os.environ if environ is None else environ
    config_path = _config_path(path, env)
    data = _read_file(config_path)
    _apply_env(data, Settings, env, ())
    _apply_provider_env(data, env)
    data.update(overrides)
    try:
        return Settings.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc, config_path)) from None


def _config_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("HUB_CONFIG"):
        return Path(env["HUB_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _apply_env(
    data: dict[str, Any], model: type[BaseModel], env: Mapping[str, str], path: tuple[str, ...]
) -> None:
    for name, field in model.model_fields.items():
        if name == "telephony" and not path:
            continue  # provider tables are open-ended: _apply_provider_env
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            table = data.setdefault(name, {})
            if isinstance(table, dict):
                _apply_env(table, sub, env, (*path, name))
            continue
        raw = env.get(env_name(*path, name), "")
        if raw != "":  # an empty variable counts as unset (compose's `${X:-}` gives "")
            data[name] = split_list(raw) if _is_list(sub) else raw


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (list, tuple)


def _apply_provider_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    prefix = ENV_PREFIX + "TELEPHONY_"
    for var, value in env.items():
        if not var.startswith(prefix):
            continue
        provider, _, key = var[len(prefix) :].partition("_")
        if not (provider and key and value != ""):
            continue
        tables = data.setdefault("telephony", {})
        table = tables.setdefault(provider.lower(), {}) if isinstance(tables, dict) else None
        if isinstance(table, dict):
            table[key.lower()] = value


def _describe(exc: pydantic.ValidationError, config_path: Path | None) -> str:
    return "invalid settings: " + "; ".join(
        describe_error(err, config_path) for err in exc.errors()
    )


def describe_error(
    err: Any, config_path: Path | None = None, model: type[BaseModel] = Settings
) -> str:
    """One pydantic error as `key (HUB_ENV) = 'value': what is wrong`; secrets stay hidden."""
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc) or "(settings)"
    if err["type"] == "extra_forbidden":
        where = f" in {config_path}" if config_path else ""
        return f"unknown setting {key!r}{where}{_suggestion(model, loc)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    hidden = loc[:1] == ("telephony",) or is_secret_key(loc[-1] if loc else "")
    shown = "" if hidden else f" = {_short(err.get('input'))}"
    return f"{key} ({env_name(*loc)}){shown}: {msg}"


def is_secret_key(name: str) -> bool:
    """True for a setting whose value must never be shown (tokens, secrets, mail URLs)."""
    return name in ("smtp_url", "imap_url") or any(word in name for word in SECRET_WORDS)


def _short(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "'**********'"
    text = repr(redact_url(value) if isinstance(value, str) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def _suggestion(model: type[BaseModel], loc: tuple[str, ...]) -> str:
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        sub = field.annotation if field else None
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return ""
        model = sub
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1) if loc else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_address(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not (at and local and "." in domain and " " not in value.strip()):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value.strip()


def check_http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip().rstrip("/")


def _check_secret_url(value: SecretStr | None, schemes: tuple[str, ...]) -> SecretStr | None:
    if value is None or not value.get_secret_value():
        return None
    scheme = value.get_secret_value().partition("://")[0].lower()
    if scheme not in schemes:
        raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
    return value
