"""Settings: defaults, file < environment < explicit precedence, every contract env name,
strict validation with errors that name the key, and secrets that never show."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from channels import ADAPTERS, build_registry
from hub.errors import ConfigError
from hub.settings import Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "hub.example.toml"
DEV = ROOT / "config" / "hub.dev.toml"


def write(tmp_path: Path, text: str, name: str = "hub.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    return info.value.message


def leaf_paths(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every setting's path; provider tables are open-ended and listed separately."""
    paths: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            paths += leaf_paths(sub, (*prefix, name))
        elif name != "telephony":
            paths.append((*prefix, name))
    return paths


def value_at(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# --- defaults and precedence ------------------------------------------------------------------


def test_defaults_without_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite://./hub.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.phone_region == "RU"
    assert settings.public_base_url is None
    assert settings.telephony == {}
    assert settings.email.inbound_token is None and settings.email.form_senders == ()
    assert settings.telegram.bot_token is None
    assert settings.telegram.api_base == "https://api.telegram.org"
    assert settings.company.name == "" and settings.company.website is None


def test_environment_beats_file_and_explicit_beats_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 9000\nhost = "0.0.0.0"\n[email]\nfrom_address = "a@file.ru"\n')
    env = {"HUB_PORT": "9001", "HUB_EMAIL_FROM_ADDRESS": "b@env.ru"}
    settings = load_settings(path, environ=env)
    assert settings.port == 9001  # environment over file
    assert settings.host == "0.0.0.0"  # file over default
    assert settings.email.from_address == "b@env.ru"
    assert load_settings(path, environ=env, port=9002).port == 9002


def test_hub_config_names_the_file_and_an_explicit_path_wins(tmp_path: Path) -> None:
    by_env = write(tmp_path, "port = 9100\n", "env.toml")
    explicit = write(tmp_path, "port = 9200\n", "explicit.toml")
    assert load_settings(environ={"HUB_CONFIG": str(by_env)}).port == 9100
    assert load_settings(explicit, environ={"HUB_CONFIG": str(by_env)}).port == 9200


def test_config_hub_toml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", 'phone_region = "KZ"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).phone_region == "KZ"


# --- environment names ------------------------------------------------------------------------

CONTRACT_ENV = [
    ("HUB_DATABASE_URL", "postgres://hub@127.0.0.1:5432/hub", ("database_url",), None),
    ("HUB_HOST", "0.0.0.0", ("host",), None),
    ("HUB_PORT", "8181", ("port",), 8181),
    ("HUB_PHONE_REGION", "kz", ("phone_region",), "KZ"),
    ("HUB_TIMEZONE", "Europe/Moscow", ("timezone",), "Europe/Moscow"),
    (
        "HUB_PUBLIC_BASE_URL",
        "https://crm.example.com/",
        ("public_base_url",),
        "https://crm.example.com",
    ),
    ("HUB_MAX_BODY_BYTES", "2048", ("max_body_bytes",), 2048),
    ("HUB_MAX_INFLIGHT_WEBHOOKS", "64", ("max_inflight_webhooks",), 64),
    ("HUB_WEBHOOK_RATE_PER_SOURCE", "0", ("webhook_rate_per_source",), 0),
    ("HUB_LOG_LEVEL", "debug", ("log_level",), "DEBUG"),
    ("HUB_STALE_CALL_MINUTES", "45", ("stale_call_minutes",), 45),
    ("HUB_REMINDER_ESCALATE_MINUTES", "90", ("reminder_escalate_minutes",), 90),
    ("HUB_EMAIL_INBOUND_TOKEN", "in-token", ("email", "inbound_token"), None),
    ("HUB_EMAIL_SMTP_URL", "smtps://u:p@smtp.example.com:465", ("email", "smtp_url"), None),
    ("HUB_EMAIL_IMAP_URL", "imaps://u:p@imap.example.com:993/INBOX", ("email", "imap_url"), None),
    ("HUB_EMAIL_FROM_ADDRESS", "sales@example.com", ("email", "from_address"), None),
    (
        "HUB_EMAIL_FORM_SENDERS",
        "forms@example.com",
        ("email", "form_senders"),
        ("forms@example.com",),
    ),
    (
        "HUB_EMAIL_FORM_SUBJECTS",
        "Заявка с сайта, New Submission",
        ("email", "form_subjects"),
        ("заявка с сайта", "new submission"),
    ),
    ("HUB_EMAIL_IMAP_MARK_SEEN", "true", ("email", "imap_mark_seen"), True),
    ("HUB_EMAIL_IMAP_MOVE_TO", "CRM", ("email", "imap_move_to"), "CRM"),
    ("HUB_EMAIL_IMAP_IDLE_SECONDS", "60", ("email", "imap_idle_seconds"), 60),
    ("HUB_EMAIL_IMAP_POLL_SECONDS", "10", ("email", "imap_poll_seconds"), 10),
    ("HUB_EMAIL_IMAP_MAX_MESSAGE_BYTES", "1048576", ("email", "imap_max_message_bytes"), 1048576),
    ("HUB_TELEGRAM_BOT_TOKEN", "123:abc", ("telegram", "bot_token"), None),
    ("HUB_TELEGRAM_WEBHOOK_SECRET", "tg-secret", ("telegram", "webhook_secret"), None),
    ("HUB_TELEGRAM_API_BASE", "http://127.0.0.1:8081", ("telegram", "api_base"), None),
    ("HUB_TELEGRAM_MODE", "polling", ("telegram", "mode"), "polling"),
    ("HUB_TELEGRAM_ASK_PHONE", "false", ("telegram", "ask_phone"), False),
    ("HUB_TELEGRAM_ASK_PHONE_TEXT", "Your number?", ("telegram", "ask_phone_text"), None),
    ("HUB_TELEGRAM_ASK_PHONE_BUTTON", "Share", ("telegram", "ask_phone_button"), None),
    ("HUB_COMPANY_NAME", " ООО «Ромашка» ", ("company", "name"), "ООО «Ромашка»"),
    ("HUB_COMPANY_PHONE", "+7 495 123-45-67", ("company", "phone"), None),
    ("HUB_COMPANY_EMAIL", "info@example.com", ("company", "email"), None),
    ("HUB_COMPANY_WEBSITE", "https://example.com/", ("company", "website"), "https://example.com"),
    ("HUB_WEBHOOKS_RETRY_HOURS", "24", ("webhooks", "retry_hours"), 24.0),
    ("HUB_WEBHOOKS_TIMEOUT_SECONDS", "5", ("webhooks", "timeout_seconds"), 5.0),
    ("HUB_WEBHOOKS_BACKOFF_SECONDS", "2.5", ("webhooks", "backoff_seconds"), 2.5),
    ("HUB_WEBHOOKS_BACKOFF_CAP_SECONDS", "600", ("webhooks", "backoff_cap_seconds"), 600.0),
    ("HUB_WEBHOOKS_KEEP_DAYS", "7", ("webhooks", "keep_days"), 7),
]


@pytest.mark.parametrize(
    ("var", "raw", "path", "expected"), CONTRACT_ENV, ids=[c[0] for c in CONTRACT_ENV]
)
def test_contract_env_name_sets_its_setting(
    var: str, raw: str, path: tuple[str, ...], expected: Any
) -> None:
    assert env_name(*path) == var
    settings = load_settings(environ={var: raw})
    assert value_at(settings, path) == (raw if expected is None else expected)


def test_every_setting_has_an_env_name_covered_above() -> None:
    assert sorted(leaf_paths()) == sorted(c[2] for c in CONTRACT_ENV)


@pytest.mark.parametrize(
    ("var", "provider", "key"),
    [
        ("HUB_TELEPHONY_GENERIC_SECRET", "generic", "secret"),
        ("HUB_TELEPHONY_ZADARMA_KEY", "zadarma", "key"),
        ("HUB_TELEPHONY_ZADARMA_API_BASE", "zadarma", "api_base"),
        ("HUB_TELEPHONY_MANGO_API_KEY", "mango", "api_key"),
        ("HUB_TELEPHONY_MANGO_API_SALT", "mango", "api_salt"),
        ("HUB_TELEPHONY_TWILIO_ACCOUNT_SID", "twilio", "account_sid"),
        ("HUB_TELEPHONY_TWILIO_AUTH_TOKEN", "twilio", "auth_token"),
        ("HUB_TELEPHONY_KAMAILIO_SECRET", "kamailio", "secret"),
    ],
)
def test_provider_env_names_map_to_provider_tables(var: str, provider: str, key: str) -> None:
    settings = load_settings(environ={var: "v-123"})
    assert settings.provider(provider) == {key: "v-123"}


def test_provider_env_overrides_and_extends_the_file_table(tmp_path: Path) -> None:
    path = write(tmp_path, '[telephony.generic]\nsecret = "from-file"\n')
    assert load_settings(path, environ={}).provider("generic") == {"secret": "from-file"}
    settings = load_settings(path, environ={"HUB_TELEPHONY_GENERIC_SECRET": "from-env"})
    assert settings.provider("generic") == {"secret": "from-env"}


def test_generic_secret_in_env_enables_the_generic_webhook() -> None:
    assert build_registry(load_settings(environ={})).get("generic") is None
    registry = build_registry(load_settings(environ={"HUB_TELEPHONY_GENERIC_SECRET": "s3"}))
    assert registry.get("generic") is not None


def test_empty_variables_count_as_unset() -> None:
    env = {"HUB_PORT": "", "HUB_TELEGRAM_API_BASE": "", "HUB_TELEPHONY_ACME_SECRET": ""}
    settings = load_settings(environ=env)
    assert settings.port == 8080 and settings.telephony == {}
    build_registry(settings)


def test_unrelated_hub_variables_are_ignored() -> None:
    settings = load_settings(
        environ={"HUB_TEST_DATABASE_URL": "postgres://x@y/z", "HUB_CONFIG": ""}
    )
    assert settings.database_url == "sqlite://./hub.db"


# --- lists ------------------------------------------------------------------------------------


def test_list_setting_in_env_is_comma_separated() -> None:
    env = {"HUB_EMAIL_FORM_SENDERS": " Forms@Example.com, noreply@tilda.ws ,, "}
    assert load_settings(environ=env).email.form_senders == (
        "forms@example.com",
        "noreply@tilda.ws",
    )


def test_list_setting_in_file_is_a_toml_array(tmp_path: Path) -> None:
    path = write(tmp_path, '[email]\nform_senders = ["a@example.com", "b@example.com"]\n')
    assert load_settings(path, environ={}).email.form_senders == ("a@example.com", "b@example.com")


def test_bad_list_item_names_key_and_value() -> None:
    message = config_error(environ={"HUB_EMAIL_FORM_SENDERS": "forms@example.com,not-an-address"})
    assert "email.form_senders" in message and "HUB_EMAIL_FORM_SENDERS" in message
    assert "not-an-address" in message


# --- validation -------------------------------------------------------------------------------


def test_unknown_top_level_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "prot = 8080\n"), environ={})
    assert "unknown setting 'prot'" in message and "'port'" in message


def test_unknown_key_in_a_section_is_named(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[email]\nsmtp = "smtp://h"\n'), environ={})
    assert "email.smtp" in message


def test_unknown_section_is_named(tmp_path: Path) -> None:
    assert "'sms'" in config_error(write(tmp_path, "[sms]\nkey = 1\n"), environ={})


@pytest.mark.parametrize(
    ("env", "key", "value"),
    [
        ({"HUB_PORT": "abc"}, "port", "abc"),
        ({"HUB_PORT": "70000"}, "port", "70000"),
        ({"HUB_PORT": "0"}, "port", "0"),
        ({"HUB_PHONE_REGION": "XX"}, "phone_region", "XX"),
        ({"HUB_TIMEZONE": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"HUB_DATABASE_URL": "mysql-ish"}, "database_url", "mysql-ish"),
        ({"HUB_PUBLIC_BASE_URL": "crm.example.com"}, "public_base_url", "crm.example.com"),
        ({"HUB_LOG_LEVEL": "loud"}, "log_level", "loud"),
        ({"HUB_MAX_BODY_BYTES": "12"}, "max_body_bytes", "12"),
        ({"HUB_TELEGRAM_API_BASE": "api.telegram.org"}, "telegram.api_base", "api.telegram.org"),
        ({"HUB_EMAIL_FROM_ADDRESS": "sales"}, "email.from_address", "sales"),
        ({"HUB_COMPANY_EMAIL": "info"}, "company.email", "info"),
        ({"HUB_COMPANY_WEBSITE": "example.com"}, "company.website", "example.com"),
    ],
)
def test_bad_value_error_names_key_env_and_value(env: dict[str, str], key: str, value: str) -> None:
    message = config_error(environ=env)
    assert f"{key} ({env_name(*key.split('.'))})" in message
    assert repr(value) in message
    assert "\n" not in message


def test_bad_value_in_file_names_the_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, 'port = "eighty"\n'), environ={})
    assert "port" in message and "'eighty'" in message


def test_every_error_is_reported_at_once() -> None:
    message = config_error(environ={"HUB_PORT": "x", "HUB_PHONE_REGION": "XX"})
    assert "port" in message and "phone_region" in message


def test_malformed_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "port = \n[email\n")
    message = config_error(path, environ={})
    assert str(path) in message and "not valid TOML" in message and "line 1" in message


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    message = config_error(environ={"HUB_CONFIG": str(tmp_path / "nope.toml")})
    assert "nope.toml" in message and "does not exist" in message


def test_unknown_provider_table_is_rejected_by_build_registry(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[telephony.acme]\nsecret = "x"\n'), environ={})
    with pytest.raises(ConfigError, match=r"telephony\.acme"):
        build_registry(settings)


def test_unknown_provider_in_env_is_rejected_by_build_registry() -> None:
    settings = load_settings(environ={"HUB_TELEPHONY_ACME_SECRET": "x"})
    with pytest.raises(ConfigError, match=r"telephony\.acme"):
        build_registry(settings)


def test_unknown_key_of_a_known_provider_is_named() -> None:
    settings = load_settings(environ={"HUB_TELEPHONY_GENERIC_SECRT": "x"})
    with pytest.raises(ConfigError, match=r"telephony\.generic\.secrt"):
        build_registry(settings)


# --- secrets ----------------------------------------------------------------------------------

SECRETS = {
    "HUB_EMAIL_INBOUND_TOKEN": "s3cr3t-inbound",
    "HUB_EMAIL_SMTP_URL": "smtps://user:s3cr3t-smtp@smtp.example.com:465",
    "HUB_EMAIL_IMAP_URL": "imaps://user:s3cr3t-imap@imap.example.com:993/INBOX",
    "HUB_TELEGRAM_BOT_TOKEN": "123456:s3cr3t-bot",
    "HUB_TELEGRAM_WEBHOOK_SECRET": "s3cr3t-webhook",
    "HUB_TELEPHONY_GENERIC_SECRET": "s3cr3t-generic",
    "HUB_DATABASE_URL": "postgres://hub:s3cr3t-db@127.0.0.1:5432/hub",
}


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = load_settings(environ=SECRETS)
    registry = build_registry(settings)
    shown = repr(settings) + str(settings) + repr(registry) + repr(list(registry.adapters.values()))
    assert "s3cr3t" not in shown
    assert "generic" in repr(settings)  # which providers are set is visible, their values are not
    assert settings.provider("generic") == {"secret": "s3cr3t-generic"}
    assert settings.email.inbound_token is not None
    assert settings.email.inbound_token.get_secret_value() == "s3cr3t-inbound"


def test_errors_about_secret_settings_do_not_show_the_value() -> None:
    message = config_error(environ={"HUB_EMAIL_SMTP_URL": "http://user:s3cr3t@mail.example.com"})
    assert "email.smtp_url" in message and "s3cr3t" not in message


def test_errors_do_not_show_a_database_password() -> None:
    message = config_error(
        environ={
            "HUB_DATABASE_URL": "postgres://hub:s3cr3t@127.0.0.1/hub",
            "HUB_PORT": "x",
        }
    )
    assert "s3cr3t" not in message


# --- the shipped config files -----------------------------------------------------------------


def test_example_config_loads_and_equals_the_defaults() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert settings == load_settings(environ={}, database_url="sqlite://./hub.db")
    build_registry(settings)


def test_example_config_documents_every_setting_and_env_name() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for path in leaf_paths():
        assert re.search(rf"^#? ?{path[-1]} = ", text, re.M), f"{'.'.join(path)} is not documented"
        assert env_name(*path) in text, f"{env_name(*path)} is not mentioned"


def test_example_config_documents_every_provider_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for cls in ADAPTERS:
        if cls.kind != "telephony":
            continue
        assert f"[telephony.{cls.name}]" in text, cls.name
        for key in cls.Config.model_fields:
            assert env_name("telephony", cls.name, key) in text, f"telephony.{cls.name}.{key}"


def test_dev_config_loads_and_enables_the_local_webhooks() -> None:
    settings = load_settings(DEV, environ={})
    registry = build_registry(settings)
    assert registry.get("generic") is not None and registry.get("email") is not None
    assert settings.database_url.startswith("sqlite://")


def test_a_telegram_token_of_the_wrong_shape_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("/dev/null", environ={"HUB_TELEGRAM_BOT_TOKEN": "secret-but-wrong"})
    assert "telegram.bot_token" in caught.value.message
    assert "secret-but-wrong" not in caught.value.message
