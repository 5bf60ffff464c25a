"""Settings: TOML file, overridden by HUB_* environment variables, validated at start-up.

The environment name of a setting is `HUB_` + its path joined by `_` in upper case
(`[email] smtp_url` ↔ `HUB_EMAIL_SMTP_URL`). Unknown keys in the file, bad values and
malformed TOML are errors that name the key. Nothing here reads settings lazily.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import phonenumbers
import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hub.errors import ConfigError

ENV_PREFIX = "HUB_"
DEFAULT_CONFIG_PATH = Path("config/hub.toml")


class Section(BaseModel):
    """A strict settings table: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailSettings(Section):
    inbound_token: SecretStr | None = None
    smtp_url: SecretStr | None = None
    imap_url: SecretStr | None = None
    from_address: str | None = None
    form_senders: tuple[str, ...] = ()

    @field_validator("form_senders", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return split_list(value)


class TelegramSettings(Section):
    bot_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    api_base: str = "https://api.telegram.org"


class Settings(Section):
    database_url: str = "sqlite://./hub.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    phone_region: str = "RU"
    public_base_url: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    log_level: str = "INFO"
    telephony: dict[str, dict[str, Any]] = Field(default_factory=dict)
    email: EmailSettings = Field(default_factory=EmailSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}; use a two-letter code such as RU")
        return region

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


def split_list(value: Any) -> Any:
    """A list setting given as one string (the environment's form) is comma-separated."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the TOML file (if any), apply HUB_* overrides, then explicit overrides."""
    env = os.environ if environ is None else environ
    data = _read_file(_config_path(path, env))
    _apply_env(data, Settings, env, ())
    _apply_provider_env(data, env)
    data.update(overrides)
    try:
        return Settings.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _apply_env(
    data: dict[str, Any], model: type[BaseModel], env: Mapping[str, str], path: tuple[str, ...]
) -> None:
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            table = data.setdefault(name, {})
            if isinstance(table, dict):
                _apply_env(table, sub, env, (*path, name))
            continue
        var = ENV_PREFIX + "_".join((*path, name)).upper()
        if var in env:
            data[name] = env[var]


def _apply_provider_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    prefix = ENV_PREFIX + "TELEPHONY_"
    for var, value in env.items():
        provider, _, key = var[len(prefix) :].partition("_") if var.startswith(prefix) else ("", "", "")
        if provider and key:
            tables = data.setdefault("telephony", {})
            tables.setdefault(provider.lower(), {})[key.lower()] = value


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(settings)"
        parts.append(f"{key}: {err['msg']}")
    return "invalid settings: " + "; ".join(parts)
