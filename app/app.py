"""The entry point: console pages, the /v1 API and start-up work, in one Reflex app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import reflex as rx

from app.api import build_api, limits, security_headers, webhooks
from app.pages.agents import agents_page
from app.pages.auth import login, setup
from app.pages.deployments import deployments_page
from app.pages.events import events_page
from app.pages.integrations import integrations_page
from app.pages.run_detail import run_detail_page
from app.pages.runs import runs_page
from app.pages.smith_detail import smith_detail_page
from app.pages.smiths import smiths_page
from app.serving import product_lifespan
from app.state.agents import AgentsState
from app.state.auth import AuthState
from app.state.deployments import DeploymentsState, SmithDeploymentsState
from app.state.events import EventsState
from app.state.integrations import IntegrationsState
from app.state.run_detail import RunDetailState
from app.state.runs import RunsState
from app.state.schedules import SchedulesState
from app.state.smith_detail import SmithDetailState
from app.state.smiths import SmithsState
from channels.redact import install_log_redaction


@contextlib.asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    """Per worker process: migrate (locked), bootstrap, the run workers, the outbox, the scheduler."""
    async with product_lifespan():
        yield


def index() -> rx.Component:
    return rx.center(rx.spinner(), height="100vh")


install_log_redaction()  # before anything logs: no provider credentials in any log line

app = rx.App(
    # The webhook receiver first, then /v1, then Reflex; security headers on all of their answers, and
    # the size and refusal guard outermost, so an oversized or throttled request costs nothing more.
    api_transformer=[build_api(), webhooks.front(), security_headers.wrap, limits.guard],
    head_components=[rx.el.title("Ingram Deployments")],
)
app.register_lifespan_task(lifespan)

app.add_page(index, route="/", title="Ingram Deployments", on_load=rx.redirect("/deployments"))
app.add_page(login, route="/login", title="Sign in · Ingram")
app.add_page(setup, route="/setup", title="Set up · Ingram", on_load=AuthState.load_setup)
app.add_page(deployments_page, route="/deployments", title="Deployments · Ingram",
             on_load=DeploymentsState.load)
app.add_page(smiths_page, route="/smiths", title="Smiths · Ingram", on_load=SmithsState.load)
app.add_page(smith_detail_page, route="/smiths/[smith_id]", title="Smith · Ingram",
             on_load=[SmithDetailState.load, SmithDeploymentsState.load, SchedulesState.load])
app.add_page(agents_page, route="/agents", title="Agents · Ingram", on_load=AgentsState.load)
app.add_page(runs_page, route="/runs", title="Runs · Ingram", on_load=RunsState.load)
app.add_page(run_detail_page, route="/runs/[run_id]", title="Run · Ingram", on_load=RunDetailState.load)
app.add_page(events_page, route="/events", title="Events · Ingram", on_load=EventsState.load)
app.add_page(integrations_page, route="/settings/integrations", title="Integrations · Ingram",
             on_load=IntegrationsState.load)
