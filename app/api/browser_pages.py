"""What a person's browser gets from the OAuth routes (Slack's install, LinkedIn's consent): a small page
or a redirect, never JSON."""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

HTML = {"text/html": {"schema": {"type": "string"}}}
REDIRECT = {"Location": {"description": "Where the browser goes next.", "required": True,
                         "schema": {"type": "string"}}}
COOKIE_AGE_S = 15 * 60  # a consent screen left open longer than this starts again from the link


def page(title: str, message: str, status: int = 200, *, link: tuple[str, str] | None = None) -> HTMLResponse:
    """A page saying how it went; ``link`` (label, url) offers the way back."""
    back = (f"<p><a id='back' href='{html.escape(link[1], quote=True)}'>{html.escape(link[0])}</a></p>"
            if link else "")
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'></head>"
            "<body style='font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem'>"
            f"<h1 id='result'>{html.escape(title)}</h1><p id='message'>{html.escape(message)}</p>{back}</body></html>")
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})
