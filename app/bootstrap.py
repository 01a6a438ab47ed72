"""Start-up work shared by ``./run.sh`` (before Reflex starts) and the app's lifespan.

Idempotent and safe when several processes run it at once: migrations take a lock, and each
insert tolerates a concurrent twin.

``python -m app.bootstrap`` migrates and prepares; ``--setup-link`` prints a new console setup
link (for a forgotten password: the old password keeps working until the link is used).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from app.services import console_auth, projects, tokens
from app.services.runtime import Runtime, get_runtime
from app.settings import Settings, get_settings
from channels.redact import install_log_redaction
from models.db import migrate

log = logging.getLogger("ingram")


def setup_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/setup?token={token}"


async def prepare(runtime: Runtime, *, force_setup_link: bool = False) -> str | None:
    """Default project, IC_ADMIN_TOKEN, console account. Returns a setup link if one was issued."""
    settings = runtime.settings
    async with runtime.transaction() as session:
        project = await projects.ensure_default_project(session)
        if settings.admin_token:
            await tokens.ensure_admin_token(session, project_id=project.id, value=settings.admin_token)
        account = await console_auth.ensure_account(session, project_id=project.id)
        if settings.admin_password and not force_setup_link:
            await console_auth.apply_admin_password(session, account=account,
                                                    password=settings.admin_password)
            return None
        token = await console_auth.issue_setup_token(session, account=account, force=force_setup_link)
    if token is None:
        return None
    link = setup_link(settings, token)
    # The link is the only way in for a fresh console: it goes to the server log on purpose.
    log.warning("Console setup link (one-time, valid 24 h): %s", link)
    return link


async def start(runtime: Runtime) -> None:
    await asyncio.to_thread(migrate, runtime.settings.database_url, runtime.settings.data_dir)
    await prepare(runtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup-link", action="store_true",
                        help="issue a new one-time console setup link and print it")
    args = parser.parse_args()
    install_log_redaction()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    migrate(settings.database_url, settings.data_dir)

    async def _run() -> None:
        runtime = get_runtime()
        try:
            link = await prepare(runtime, force_setup_link=args.setup_link)
            if args.setup_link and link:
                print(link)
        finally:
            await runtime.close()

    asyncio.run(_run())


if __name__ == "__main__":
    main()
