"""The browser half of "Add to Slack" (SL-2): the install link and Slack's OAuth callback.

No API token: a person's browser follows these. Both answer a redirect or a small page, never JSON.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.browser_pages import COOKIE_AGE_S, HTML, REDIRECT, page
from app.services import slack_install
from app.services.runtime import get_runtime

router = APIRouter(tags=["browser"])  # no bearer token: a person's browser follows these
COOKIE_PATH = "/v1/slack/oauth"


def _with_result(url: str, result: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"slack": result})))


@router.get("/v1/slack/install/{token}", response_class=RedirectResponse, status_code=302,
            summary="Open a smith's Add-to-Slack link",
            description="Redirects to Slack's consent page; a used or expired link answers a page saying so.",
            responses={302: {"description": "To Slack's consent page, with the install's state cookie.",
                             "headers": REDIRECT},
                       404: {"description": "A page: the link is unknown, used or expired.", "content": HTML}})
async def install(token: str, request: Request) -> Response:
    try:
        url = await slack_install.begin(get_runtime(), token)
    except slack_install.InstallProblem as problem:
        return page("Link not valid", problem.message, status=404)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(slack_install.STATE_COOKIE, slack_install.state_cookie(token), max_age=COOKIE_AGE_S,
                        path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")  # behind a TLS proxy the scheme may read http
    return response


@router.get("/v1/slack/oauth/callback", response_class=HTMLResponse, summary="Slack's OAuth callback",
            description="Exchanges the code, stores the workspace's installation and binds the deployment; then "
                        "redirects to the deployment's return_url with ?slack=connected|cancelled|error, or answers "
                        "a page.",
            responses={302: {"description": "To the deployment's return_url with ?slack=connected|cancelled|error.",
                             "headers": REDIRECT},
                       400: {"description": "A page: Slack's answer could not be used.", "content": HTML}})
async def callback(request: Request, state: str = Query(default="", max_length=200),
                   code: str | None = Query(default=None, max_length=500),
                   error: str | None = Query(default=None, max_length=200)) -> Response:
    outcome = await slack_install.complete(get_runtime(), state=state, code=code, error=error,
                                           cookie=request.cookies.get(slack_install.STATE_COOKIE))
    if outcome.return_url:
        response: Response = RedirectResponse(_with_result(outcome.return_url, outcome.result), status_code=302)
    else:
        titles = {"connected": "Slack connected", "cancelled": "Install cancelled", "error": "Slack not connected"}
        response = page(titles[outcome.result], outcome.message, status=400 if outcome.result == "error" else 200)
    if outcome.result != "cancelled":
        response.delete_cookie(slack_install.STATE_COOKIE, path=COOKIE_PATH)
    return response
