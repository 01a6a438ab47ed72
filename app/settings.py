"""Every IC_* setting in one place. All are optional; the defaults give the embedded setup.

Read once per process (``get_settings()``); tests build their own ``Settings`` and pass it in or
set the environment before the first call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

API_VERSION = "2026-05-01"
SUPPORTED_API_VERSIONS = frozenset({API_VERSION})


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name).lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    public_url: str
    secret_keys: tuple[str, ...]  # newest first; empty -> the generated key file
    admin_token: str
    admin_password: str
    model_provider: str
    model_base_url: str
    model_api_key: str
    model: str
    telegram_api_url: str
    slack_api_url: str
    slack_oauth_url: str
    graph_api_url: str
    cloudflare_api_url: str
    linkedin_api_url: str
    session_hours: int
    workers: int
    run_lease_seconds: float
    run_poll_seconds: float
    send_lease_seconds: float
    allow_private_urls: bool
    log_level: str
    # Streams and quotas (issue 13 §6); each refusal has a stable code (README).
    stream_recheck_seconds: float = 5.0  # IC_STREAM_RECHECK_SECONDS: an open SSE stream re-checks its token
    streams_per_token: int = 5  # IC_STREAMS_PER_TOKEN: open SSE streams per token per process (429 too_many_streams)
    streams_per_process: int = 200  # IC_STREAMS_PER_PROCESS: open SSE streams per process (429 too_many_streams)
    memory_max_entries: int = 1000  # IC_MEMORY_MAX_ENTRIES: entries per smith (409 memory_full)
    memory_max_value_chars: int = 100_000  # IC_MEMORY_MAX_VALUE_CHARS (422 memory_value_too_large)
    provider_metadata_max_bytes: int = 16_384  # IC_PROVIDER_METADATA_MAX_BYTES (JSON; 422 provider_metadata_too_large)
    runs_per_sender_per_minute: int = 20  # IC_RUNS_PER_SENDER_PER_MINUTE, per (project, chat sender); 0 = off
    runs_per_token_per_minute: int = 60  # IC_RUNS_PER_TOKEN_PER_MINUTE, runs started with one token; 0 = off
    max_webhook_bytes: int = 1_000_000
    max_api_bytes: int = 1_000_000
    refusal_limit: int = 30
    refusal_window_seconds: float = 60.0
    trusted_proxies: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    channel_cache_seconds: float = 10.0
    slack_app_cap: int = 50  # IC_SLACK_APP_CAP: dedicated Slack apps per project (429 slack_app_cap_reached)
    email_inbox_cap: int = 200  # IC_EMAIL_INBOX_CAP: email inboxes per project (429 email_inbox_cap_reached)
    max_email_bytes: int = 10_000_000  # IC_MAX_EMAIL_BYTES: the largest inbound email (the Worker refuses more)
    tx_watchdog_seconds: float = 2.0
    tx_watchdog_strict: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # How many reverse proxies in front append to X-Forwarded-For (0: use the socket's peer address).
    trusted_proxy_hops: int = 0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of IC_PUBLIC_URL: the only origin the console's socket accepts."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def console_origins(self) -> tuple[str, ...]:
        """Origins the console's socket (and browsers calling the API) may come from: IC_PUBLIC_URL's,
        plus its loopback aliases when it is a loopback address (localhost and 127.0.0.1 are the same
        machine to a person, not to a browser's Origin header)."""
        parts = urlsplit(self.public_url)
        origins = [self.public_origin]
        if parts.hostname in ("localhost", "127.0.0.1", "::1"):
            port = f":{parts.port}" if parts.port else ""
            origins += [f"{parts.scheme}://{host}{port}" for host in ("localhost", "127.0.0.1", "[::1]")]
        return tuple(dict.fromkeys(origins))

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("IC_DATA_DIR", "./data")).expanduser().resolve()
        database_url = _env("IC_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'ingram.db'}"
        keys = tuple(k.strip() for k in _env("IC_SECRET_KEY").split(",") if k.strip())
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            public_url=_env("IC_PUBLIC_URL", "http://localhost:8000").rstrip("/"),
            secret_keys=keys,
            admin_token=_env("IC_ADMIN_TOKEN"),
            admin_password=_env("IC_ADMIN_PASSWORD"),
            model_provider=_env("IC_MODEL_PROVIDER", "builtin"),
            model_base_url=_env("IC_MODEL_BASE_URL"),
            model_api_key=_env("IC_MODEL_API_KEY"),
            model=_env("IC_MODEL"),
            telegram_api_url=_env("IC_TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
            slack_api_url=_env("IC_SLACK_API_URL", "https://slack.com/api/"),
            slack_oauth_url=_env("IC_SLACK_OAUTH_URL", "https://slack.com/oauth/v2/authorize"),
            graph_api_url=_env("IC_GRAPH_API_URL", "https://graph.facebook.com/v23.0").rstrip("/"),
            cloudflare_api_url=_env(
                "IC_CLOUDFLARE_API_URL", "https://api.cloudflare.com/client/v4"
            ).rstrip("/"),
            linkedin_api_url=_env("IC_LINKEDIN_API_URL", "https://api.linkedin.com").rstrip("/"),
            session_hours=_env_int("IC_SESSION_HOURS", 12),
            # SQLite: a worker waiting for its group's COMMIT is idle, and the transactions queue for
            # one connection anyway, so more workers fill groups (bench/webhook.py: 16 answered 10-20%
            # more than 4, at less CPU per update). PostgreSQL: each holds a pooled connection.
            workers=_env_int("IC_WORKERS", 16 if database_url.startswith("sqlite") else 4),
            run_lease_seconds=float(_env("IC_RUN_LEASE_SECONDS", "60")),
            run_poll_seconds=float(_env("IC_RUN_POLL_SECONDS", "0.5")),
            send_lease_seconds=float(_env("IC_SEND_LEASE_SECONDS", "60")),
            allow_private_urls=_env_bool("IC_ALLOW_PRIVATE_URLS", False),
            log_level=_env("IC_LOG_LEVEL", "INFO"),
            trusted_proxy_hops=_env_int("IC_TRUSTED_PROXY_HOPS", 0),
            stream_recheck_seconds=float(_env("IC_STREAM_RECHECK_SECONDS", "5")),
            streams_per_token=_env_int("IC_STREAMS_PER_TOKEN", 5),
            streams_per_process=_env_int("IC_STREAMS_PER_PROCESS", 200),
            memory_max_entries=_env_int("IC_MEMORY_MAX_ENTRIES", 1000),
            memory_max_value_chars=_env_int("IC_MEMORY_MAX_VALUE_CHARS", 100_000),
            provider_metadata_max_bytes=_env_int("IC_PROVIDER_METADATA_MAX_BYTES", 16_384),
            runs_per_sender_per_minute=_env_int("IC_RUNS_PER_SENDER_PER_MINUTE", 20),
            runs_per_token_per_minute=_env_int("IC_RUNS_PER_TOKEN_PER_MINUTE", 60),
            # Limits before work (app/api/limits.py): bodies are refused (413) before they are read.
            max_webhook_bytes=_env_int("IC_MAX_WEBHOOK_BYTES", 1_000_000),
            max_api_bytes=_env_int("IC_MAX_API_BYTES", 1_000_000),
            # After this many refusals (401/403/413) from one client address within the window, the
            # client gets a cheap 429 until the window ends (0: never).
            refusal_limit=_env_int("IC_REFUSAL_LIMIT", 30),
            refusal_window_seconds=float(_env("IC_REFUSAL_WINDOW_SECONDS", "60")),
            # Peers whose X-Forwarded-For names the client (the TLS reverse proxy); 0 disables the limit above.
            trusted_proxies=frozenset(a.strip() for a in _env("IC_TRUSTED_PROXIES", "127.0.0.1,::1").split(",")
                                      if a.strip()),
            # How long a webhook's channel (and an unknown tenant) stays cached for verification.
            channel_cache_seconds=float(_env("IC_CHANNEL_CACHE_SECONDS", "10")),
            # Dedicated Slack apps a project may have live at once (SL-3; Slack caps apps per workspace too).
            slack_app_cap=_env_int("IC_SLACK_APP_CAP", 50),
            email_inbox_cap=_env_int("IC_EMAIL_INBOX_CAP", 200),
            # Inbound email can carry attachments: its webhook takes more than other providers' (max_webhook_bytes).
            max_email_bytes=_env_int("IC_MAX_EMAIL_BYTES", 10_000_000),
            # The SQLite writer logs any transaction holding it longer than this; strict (tests)
            # also records it so the test fails (models/inline_sqlite.py).
            tx_watchdog_seconds=float(_env("IC_TX_WATCHDOG_SECONDS", "2")),
            tx_watchdog_strict=_env_bool("IC_TX_WATCHDOG_STRICT", False),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
