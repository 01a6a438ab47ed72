"""Start, restart and idle memory of ``./run.sh`` in the README's terms (issue 19 §4). Run by hand:

    .venv/bin/python -m bench.startup [--restarts 3] [--idle-seconds 20] [--cold]

It starts ``./run.sh`` on a free port with a fresh data directory (SQLite, the built-in model), times it until
both the console (``/``) and the API (``/v1/health``) answer 200, stops it, and starts it again ``--restarts``
times on the same port and data: a restart. After the last start it waits ``--idle-seconds`` with no traffic
and reports the server's memory: RSS of each of its processes, their sum, and PSS (proportional set size: pages
shared by a fork counted once, so the processes' PSS add up to what the install really holds), and its idle
CPU. ``--cold`` first clones this repository into a temporary directory and times its first ``./run.sh`` from
nothing (a new venv from the warm pip cache, npm install, the console build), i.e. a fresh clone's start.
Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.stats import tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 900.0
TARGET_RESTART_S, TARGET_COLD_S, TARGET_IDLE_MB = 5.0, 60.0, 250.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(root: Path, port: int, data: Path, log: Path,
          extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], float]:
    """``./run.sh`` started; the seconds until it answered."""
    env = {**os.environ, "IC_DATA_DIR": str(data), "IC_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "IC_LOG_LEVEL": "WARNING", **(extra or {})}
    began = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(["./run.sh", "--backend-port", str(port)], cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() - began < READY_TIMEOUT_S:
        if process.poll() is not None:
            raise SystemExit(f"./run.sh exited early; see {log}")
        try:
            if httpx.get(f"{url}/", timeout=2).status_code == 200 and \
                    httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return process, time.monotonic() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"./run.sh did not answer in {READY_TIMEOUT_S:.0f} s; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def memory_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def describe(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70]
    except OSError:
        return "?"


def report_memory(process: subprocess.Popen[bytes]) -> None:
    pids = [pid for pid in tree(process.pid) if memory_kb(pid, "Rss")]
    rss = {pid: memory_kb(pid, "Rss") / 1024 for pid in pids}
    pss = {pid: memory_kb(pid, "Pss") / 1024 for pid in pids}
    for pid in pids:
        print(f"  pid {pid}: RSS {rss[pid]:6.0f} MB, PSS {pss[pid]:6.0f} MB  {describe(pid)}")
    total_rss, total_pss = sum(rss.values()), sum(pss.values())
    print(f"idle memory: {len(pids)} processes, RSS sum {total_rss:.0f} MB, PSS sum {total_pss:.0f} MB "
          f"(target <= {TARGET_IDLE_MB:.0f} MB) -> {'met' if total_pss <= TARGET_IDLE_MB else 'NOT met'} by PSS, "
          f"{'met' if total_rss <= TARGET_IDLE_MB else 'NOT met'} by RSS", flush=True)


def idle_figures(process: subprocess.Popen[bytes], seconds: float, which: str) -> None:
    print(f"-- {which}, idle:")
    time.sleep(5.0)  # the start's own work settles
    cpu_before, began = tree_cpu_seconds(process.pid), time.monotonic()
    time.sleep(seconds)
    idle = (tree_cpu_seconds(process.pid) - cpu_before) / (time.monotonic() - began) * 100
    print(f"idle CPU over {seconds:g} s: {idle:.2f}% of a core (target < 1%)")
    report_memory(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--cold", action="store_true", help="also time a fresh clone's first start")
    parser.add_argument("--rebuilding", type=int, default=3,
                        help="restarts that build the console anyway, as every start did before (a Reflex setting "
                             "that changes each time makes the bundle stale)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="ic-bench-startup-"))
    if args.cold:
        clone = work / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        process, seconds = start(clone, free_port(), work / "cold-data", work / "cold.log")
        stop(process)
        print(f"cold start (fresh clone, new venv from the warm pip cache, console built): {seconds:.1f} s "
              f"(target <= {TARGET_COLD_S:.0f} s) -> {'met' if seconds <= TARGET_COLD_S else 'NOT met'}", flush=True)
    port, data = free_port(), work / "data"
    process, seconds = start(ROOT, port, data, work / "server.log")
    print(f"first start here (this checkout's venv; the console built unless its bundle is current): {seconds:.1f} s",
          flush=True)
    restarts = []
    for _ in range(args.restarts):
        stop(process)
        process, seconds = start(ROOT, port, data, work / "server.log")
        restarts.append(seconds)
        print(f"restart: {seconds:.1f} s", flush=True)
    rebuilding = []
    for n in range(args.rebuilding):
        stop(process)
        process, seconds = start(ROOT, port, data, work / "server.log", {"REFLEX_IC_BENCH_NONCE": f"{time.time()}-{n}"})
        rebuilding.append(seconds)
        print(f"restart building the console again: {seconds:.1f} s", flush=True)
    if rebuilding:
        print(f"restart building the console again (as every restart did before): {min(rebuilding):.1f}-"
              f"{max(rebuilding):.1f} s over {len(rebuilding)}", flush=True)
        idle_figures(process, args.idle_seconds, "a server that built the console at its start")
        stop(process)
        process, _ = start(ROOT, port, data, work / "server.log")  # built once more for the usual settings
        stop(process)
        process, _ = start(ROOT, port, data, work / "server.log")  # and reused
    if restarts:
        print(f"restart: {min(restarts):.1f}-{max(restarts):.1f} s over {len(restarts)} (target <= "
              f"{TARGET_RESTART_S:.0f} s) -> {'met' if max(restarts) <= TARGET_RESTART_S else 'NOT met'}", flush=True)
    idle_figures(process, args.idle_seconds, "a server that reused the bundle")
    stop(process)
    print(f"logs: {work}")


if __name__ == "__main__":
    main()
