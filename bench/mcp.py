"""MCP ``ask`` round trip through the mcp SDK's own client against the product served locally. Run by hand:

    .venv/bin/python -m bench.mcp [--asks 200] [--concurrency 8] [--database sqlite|postgres] [--transcript]

A child process serves the product without its console (``app.headless``: the same HTTP layers Reflex
stacks, under uvicorn, with the product's own lifespan: migrations, bootstrap, run workers, scheduler and
the MCP session manager), on SQLite in a temporary data
directory (or a fresh PostgreSQL database on IC_BENCH_POSTGRES_URL's server, as bench.runs does),
with the built-in offline model. It is not ``./run.sh`` only because that also compiles
the console, which an MCP measurement does not touch.

The parent creates an agent, a smith and an MCP deployment over /v1, then measures with the SDK
client (streamable HTTP over httpx2, ClientSession, stateless JSON responses: one POST per ask):
  sequential   one caller, --asks asks one after another (after 10 warm-up asks);
  concurrent   --concurrency callers (distinct token subjects: one thread each on the shared smith),
               --asks asks in all, each caller one at a time.
First, a baseline: tools/list round trips (HTTP, auth and the SDK's stateless transport, no run).
For each it prints the ask round trip (client call to result) p50/p90/p99/max and asks/s, and the
run's own time in the engine (run created -> finished, from the run rows) for comparison; the
difference is HTTP, auth, the enqueue transaction and the tool's polling of the run row.
``--transcript`` instead prints every HTTP exchange of one SDK session (initialize, tools, two asks,
resources). Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench.stats import pct

ROOT = Path(__file__).resolve().parent.parent


def line(name: str, values: list[float], wall_s: float | None = None) -> str:
    rate = f"  {len(values) / wall_s:7.1f} asks/s" if wall_s else ""
    return (f"  {name:<24} n={len(values):<4} p50 {pct(values, 50):7.1f} ms  p90 {pct(values, 90):7.1f} ms  "
            f"p99 {pct(values, 99):7.1f} ms  max {pct(values, 100):7.1f} ms{rate}")


# -- the served product (child process) ----------------------------------------------------------


def serve_child(port: int) -> None:
    import uvicorn

    from app.headless import headless_app  # the product's HTTP app and lifespan, without the console

    uvicorn.run(headless_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def product_server(tmp: Path, database_url: str | None) -> Any:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    token = f"ic_admin_{secrets.token_urlsafe(24)}"
    env = {**os.environ, "IC_DATA_DIR": str(tmp / "data"), "IC_PUBLIC_URL": url, "IC_ADMIN_TOKEN": token,
           "IC_ADMIN_PASSWORD": "", "IC_MODEL_PROVIDER": "builtin", "IC_LOG_LEVEL": "WARNING",
           "IC_RUNS_PER_TOKEN_PER_MINUTE": "1000000"}  # --asks exceeds the per-token limit; keep its check measured
    env.pop("IC_DATABASE_URL", None)
    if database_url:
        env["IC_DATABASE_URL"] = database_url
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bench.mcp", "--serve", str(port)], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited:\n{(tmp / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start in 120 s")
            time.sleep(0.2)
        yield url, token
    finally:
        process.terminate()
        process.wait(30)
        log.close()


# -- the client side -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def mcp_session(url: str, token: str, http_hooks: dict[str, list[Any]] | None = None
                      ) -> AsyncIterator[ClientSession]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30.0, read=150.0),
                              event_hooks=http_hooks or {})
    async with http, streamable_http_client(url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def setup(api: httpx.AsyncClient, callers: int) -> tuple[str, list[str]]:
    agent = (await api.post("/v1/agents", json={"name": "Bench agent"})).json()
    smith = (await api.post("/v1/smiths", json={"agent_id": agent["id"], "name": "Bench smith"})).json()
    deployment = await api.post("/v1/deployments", json={"target": {"type": "smith", "id": smith["id"]},
                                                          "kind": "mcp"})
    assert deployment.status_code == 201, deployment.text
    tokens = [(await api.post("/v1/tokens", json={"subject": f"bench-{i}"})).json()["token"] for i in range(callers)]
    return deployment.json()["endpoint_url"], tokens


async def engine_times(api: httpx.AsyncClient, run_ids: list[str]) -> list[float]:
    """created -> finished of each run, from the run rows (the engine's share of a round trip)."""
    times = []
    for run_id in run_ids:
        run = (await api.get(f"/v1/runs/{run_id}")).json()
        if run.get("finished_at"):
            times.append((datetime.fromisoformat(run["finished_at"])
                          - datetime.fromisoformat(run["created_at"])).total_seconds())
    return times


async def ask_many(session: ClientSession, count: int, tag: str, latencies: list[float], run_ids: list[str],
                   errors: list[str]) -> None:
    for k in range(count):
        began = time.perf_counter()
        result = await session.call_tool("ask", {"message": f"hello {tag} {k}"})
        latencies.append(time.perf_counter() - began)
        if result.is_error:
            errors.append(str(result.content))
        else:
            run_ids.append(result.structured_content["run_id"])


async def bench(url: str, admin: str, asks: int, concurrency: int, database: str) -> None:
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
        endpoint, tokens = await setup(api, max(concurrency, 1))
        print(f"endpoint {endpoint}")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
              f"(shared); server: one uvicorn process, {database}, built-in model, IC_WORKERS default")

        latencies: list[float] = []
        run_ids: list[str] = []
        errors: list[str] = []
        async with mcp_session(endpoint, tokens[0]) as session:
            await ask_many(session, 10, "warm-up", [], [], errors)
            listing = []
            for _ in range(asks):  # the MCP stack and auth alone: no run, one POST each
                began = time.perf_counter()
                await session.list_tools()
                listing.append(time.perf_counter() - began)
            print("baseline (1 caller, no run)")
            print(line("tools/list round trip", listing))
            began = time.perf_counter()
            await ask_many(session, asks, "seq", latencies, run_ids, errors)
            wall = time.perf_counter() - began
        print("sequential (1 caller)")
        print(line("ask round trip", latencies, wall))
        print(line("run created->finished", await engine_times(api, run_ids)))

        sessions = []
        async with contextlib.AsyncExitStack() as stack:
            for token in tokens[:concurrency]:
                sessions.append(await stack.enter_async_context(mcp_session(endpoint, token)))
            latencies, run_ids = [], []
            per = max(asks // concurrency, 1)
            began = time.perf_counter()
            await asyncio.gather(*(ask_many(s, per, f"c{i}", latencies, run_ids, errors)
                                   for i, s in enumerate(sessions)))
            wall = time.perf_counter() - began
        print(f"concurrent ({concurrency} callers, {per} asks each)")
        print(line("ask round trip", latencies, wall))
        print(line("run created->finished", await engine_times(api, run_ids)))
        print(f"errors: {len(errors)}" + (f" (first: {errors[0][:200]})" if errors else ""))


async def transcript(url: str, admin: str) -> None:
    def show(direction: str, text: str) -> None:
        try:
            body = json.dumps(json.loads(text), indent=2, ensure_ascii=False) if text else "(empty)"
        except ValueError:
            body = text
        print(f"{direction}\n{body}\n")

    async def on_request(request: httpx2.Request) -> None:
        wanted = ("authorization", "mcp-protocol-version", "content-type", "accept")
        shown = {k: ("Bearer ic_admin_…" if k == "authorization" else v) for k, v in request.headers.items()
                 if k in wanted}
        show(f">>> {request.method} {request.url.path}  {shown}", request.content.decode())

    async def on_response(response: httpx2.Response) -> None:
        await response.aread()
        show(f"<<< {response.status_code} {response.headers.get('content-type', '')}", response.text)

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as api:
        endpoint, tokens = await setup(api, 1)
    print(f"# endpoint_url from POST /v1/deployments: {endpoint}\n")
    async with mcp_session(endpoint, tokens[0], {"request": [on_request], "response": [on_response]}) as session:
        print("# session.list_tools()")
        await session.list_tools()
        print("# session.call_tool('ask', {'message': '/remember color = blue'})")
        await session.call_tool("ask", {"message": "/remember color = blue"})
        print("# session.call_tool('ask', {'message': '/recall color'})")
        await session.call_tool("ask", {"message": "/recall color"})
        print("# session.list_resources()")
        await session.list_resources()
        print("# session.read_resource('memory://color')")
        await session.read_resource("memory://color")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--transcript", action="store_true", help="print one SDK session's HTTP exchanges")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve)
        return
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = None
        if args.database == "postgres":
            from bench.runs import DEFAULT_POSTGRES, postgres_database

            database_url, _ = stack.enter_context(
                postgres_database(os.environ.get("IC_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)))
        url, admin = stack.enter_context(product_server(tmp, database_url))
        if args.transcript:
            asyncio.run(transcript(url, admin))
        else:
            asyncio.run(bench(url, admin, args.asks, args.concurrency, args.database))


if __name__ == "__main__":
    main()
