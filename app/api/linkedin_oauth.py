"""The browser half of LinkedIn's consent (LI-1): the one-time consent link and LinkedIn's OAuth callback.

No API token: a Page admin's browser follows these. Both answer a redirect or a small page, never JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.browser_pages import COOKIE_AGE_S, HTML, REDIRECT, page
from app.services import linkedin_consent
from app.services.runtime import get_runtime

router = APIRouter(tags=["browser"])
COOKIE_PATH = "/v1/linkedin"
TITLES = {"connected": "LinkedIn consent given", "cancelled": "Consent cancelled", "error": "LinkedIn not connected"}


@router.get("/v1/linkedin/consent/{state}", response_class=RedirectResponse, status_code=302,
            summary="Open a LinkedIn consent link",
            description="Redirects a Page admin to LinkedIn's consent screen; a used or expired link answers a page "
                        "saying so.",
            responses={302: {"description": "To LinkedIn's consent screen, with the consent's state cookie.",
                             "headers": REDIRECT},
                       404: {"description": "A page: the link is unknown, used or expired.", "content": HTML}})
async def consent(request: Request, state: str) -> Response:
    try:
        url = await linkedin_consent.begin(get_runtime(), state[:200])
    except linkedin_consent.ConsentProblem as problem:
        return page("Link not valid", problem.message, status=404)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(linkedin_consent.STATE_COOKIE, linkedin_consent.state_cookie(state), max_age=COOKIE_AGE_S,
                        path=COOKIE_PATH, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


@router.get("/v1/linkedin/oauth/callback", response_class=HTMLResponse, summary="LinkedIn's OAuth callback",
            description="Exchanges the code, checks that the member administers the Page and stores the tokens; "
                        "answers a page saying how it went.",
            responses={400: {"description": "A page: LinkedIn's answer could not be used.", "content": HTML}})
async def callback(request: Request, state: str = Query(default="", max_length=200),
                   code: str | None = Query(default=None, max_length=1000),
                   error: str | None = Query(default=None, max_length=200)) -> Response:
    runtime = get_runtime()
    outcome = await linkedin_consent.complete(runtime, state=state, code=code, error=error,
                                              cookie=request.cookies.get(linkedin_consent.STATE_COOKIE))
    console = f"{runtime.settings.public_url}/settings/integrations"
    response = page(TITLES[outcome.result], outcome.message, status=400 if outcome.result == "error" else 200,
                    link=("Back to Settings → Integrations", console))
    if outcome.result != "cancelled":
        response.delete_cookie(linkedin_consent.STATE_COOKIE, path=COOKIE_PATH)
    return response
