"""The benchmark table: every figure measured in one run, on loopback only.

    .venv/bin/python -m bench.run          # or: make bench
    .venv/bin/python -m bench.run --help   # sample counts, durations, load generator

Starts a fake upstream, the service and two bare ASGI apps as real processes on 127.0.0.1,
measures, stops them, and prints one markdown table (progress goes to stderr):

1. task overhead: submit -> `task.succeeded` (WebSocket) through the service, minus a direct
   call to the fake upstream with the same fixed latency, at 1 and at 100 concurrent tasks;
2. `/health` requests/s against the service and against bare apps under the same uvicorn
   settings (wrk if installed, else an asyncio httpx load generator);
3. RSS of a fresh service after start and after registering 1,000 agents, and per idle
   event socket (WebSocket compression off and on) and after those sockets close;
4. the resilience policy's per-call overhead (bench/bench_resilience.py's `measure`);
5. browser agents: time per action and memory of one page (bench/bench_browser.py),
   skipped with a note when no Chromium is installed.

`--only browser` runs section 5 alone.

Every loop is bounded in count and in time; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from app.core.gc_tuning import settle_after_startup
from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env
from tests.support.procs import (
    Proc,
    free_port,
    start_fake_upstream,
    start_process,
    start_service,
)
from tests.support.sockets import measure_idle, rss_bytes

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-fixed-latency"
TASK_TIMEOUT_S = 30.0  # one task or one direct call; a stuck run fails instead of hanging


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- figures ------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    p50: str = "—"
    p99: str = "—"
    value: str = "—"
    details: str = ""


def percentile(samples: list[float], pct: int) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def us(micros: float) -> str:
    return f"{micros:.2f} µs"


def mib(nbytes: float) -> str:
    return f"{nbytes / 1_048_576:.1f} MiB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "—"


@dataclass
class Latencies:
    samples: list[float]

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)


# --- 1. task overhead ---------------------------------------------------------------------


async def _rounds(
    one: Callable[[int], Awaitable[float]], concurrency: int, rounds: int, budget_s: float
) -> list[float]:
    """`rounds` rounds of `concurrency` concurrent calls, stopping early past `budget_s`."""
    samples: list[float] = []
    deadline = time.monotonic() + budget_s
    for _ in range(rounds):
        if time.monotonic() > deadline:
            log(f"time budget of {budget_s:.0f}s reached after {len(samples)} samples")
            break
        samples.extend(await asyncio.gather(*(one(slot) for slot in range(concurrency))))
    return samples


@contextlib.asynccontextmanager
async def slot_clients(base_url: str, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One keep-alive httpx client per concurrent slot. A single shared client would measure
    httpcore's pool instead: at 100 in-flight requests its request-to-connection assignment
    (O(requests x connections) on every change) costs ~0.7 s p50 on this kind of machine."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, timeout=TASK_TIMEOUT_S)
            )
            for _ in range(count)
        ]


async def direct_latencies(
    fake_url: str, concurrency: int, rounds: int, warmup_rounds: int, budget_s: float
) -> Latencies:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "bench"}]}
    async with slot_clients(fake_url, concurrency) as clients:

        async def one(slot: int) -> float:
            started = time.perf_counter()
            response = await clients[slot].post("/v1/chat/completions", json=body)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            return elapsed

        await _rounds(one, concurrency, warmup_rounds, budget_s)
        return Latencies(await _rounds(one, concurrency, rounds, budget_s))


class TaskEvents:
    """Records when each task's `task.succeeded` event arrives on the WebSocket and lets a
    caller wait for a given task id (even if its event came first). A second stream of
    `task.failed` events only turns a failed task into an error instead of a 30 s wait."""

    def __init__(self) -> None:
        self._arrived: dict[str, float | str] = {}
        self._waiting: dict[str, asyncio.Future[float]] = {}

    async def read(self, ws: ClientConnection, *, succeeded: bool) -> None:
        async for message in ws:
            now = time.perf_counter()
            event: dict[str, Any] = json.loads(message)
            task_id = event.get("task_id")
            if not isinstance(task_id, str):
                continue
            outcome: float | str = now if succeeded else json.dumps(event.get("payload"))
            future = self._waiting.pop(task_id, None)
            if future is None:
                self._arrived[task_id] = outcome
            elif not future.done():
                if isinstance(outcome, float):
                    future.set_result(outcome)
                else:
                    future.set_exception(RuntimeError(f"task {task_id} failed: {outcome}"))

    async def arrival(self, task_id: str, timeout_s: float) -> float:
        if task_id in self._arrived:
            outcome = self._arrived.pop(task_id)
            if isinstance(outcome, str):
                raise RuntimeError(f"task {task_id} failed: {outcome}")
            return outcome
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[task_id] = future
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self._waiting.pop(task_id, None)


async def _explain_stuck(http: httpx.AsyncClient, task_id: str) -> str:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        task = (await http.get(f"/v1/tasks/{task_id}")).json()
        return f"state={task.get('state')} error={task.get('error')}"
    return "state unknown"


async def service_latencies(
    service_url: str,
    agents: list[str],
    rounds: int,
    warmup_rounds: int,
    budget_s: float,
) -> Latencies:
    concurrency = len(agents)
    async with (
        httpx.AsyncClient(base_url=service_url, timeout=TASK_TIMEOUT_S) as http,
        slot_clients(service_url, concurrency) as clients,
    ):
        for name in agents:
            response = await http.post(
                "/v1/agents",
                json={"name": name, "kind": "chat", "provider": "openai", "model": MODEL},
            )
            if response.status_code != 201:
                raise RuntimeError(f"creating agent {name}: {response.status_code} {response.text}")
        # subscribe from "now": no stored backlog to replay, and no event can be missed
        last_seq = (await http.get("/v1/events", params={"limit": 1})).json()["last_seq"]
        ws_url = service_url.replace("http://", "ws://") + "/v1/events/ws"
        events = TaskEvents()
        async with (
            connect(
                f"{ws_url}?type=task.succeeded&after_seq={last_seq}",
                open_timeout=10,
                close_timeout=5,
            ) as ws,
            connect(
                f"{ws_url}?type=task.failed&after_seq={last_seq}", open_timeout=10, close_timeout=5
            ) as failures,
        ):
            readers = [
                asyncio.create_task(events.read(ws, succeeded=True)),
                asyncio.create_task(events.read(failures, succeeded=False)),
            ]
            try:

                async def one(slot: int) -> float:
                    started = time.perf_counter()
                    response = await clients[slot].post(
                        f"/v1/agents/{agents[slot]}/tasks", json={"prompt": "bench"}
                    )
                    if response.status_code != 202:
                        raise RuntimeError(f"submit: {response.status_code} {response.text}")
                    task_id: str = response.json()["id"]
                    try:
                        arrived = await events.arrival(task_id, TASK_TIMEOUT_S)
                    except TimeoutError:
                        why = await _explain_stuck(http, task_id)
                        raise RuntimeError(f"no task.succeeded for {task_id}: {why}") from None
                    return arrived - started

                await _rounds(one, concurrency, warmup_rounds, budget_s)
                return Latencies(await _rounds(one, concurrency, rounds, budget_s))
            finally:
                for reader in readers:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader


def overhead_rows(label: str, direct: Latencies, service: Latencies, details: str) -> list[Row]:
    return [
        Row(
            f"{label}: direct call to the fake",
            ms(direct.p50),
            ms(direct.p99),
            details=f"n={len(direct.samples)}; {details}",
        ),
        Row(
            f"{label}: through the service",
            ms(service.p50),
            ms(service.p99),
            details=f"n={len(service.samples)}; submit → task.succeeded on the WebSocket",
        ),
        Row(
            f"{label}: **overhead** (service - direct)",
            ms(service.p50 - direct.p50),
            ms(service.p99 - direct.p99),
            details="difference of the p50s / of the p99s",
        ),
        Row(
            f"{label}: ratio service / direct",
            ratio(service.p50, direct.p50),
            ratio(service.p99, direct.p99),
        ),
    ]


# --- 2. /health throughput ----------------------------------------------------------------


@dataclass
class LoadResult:
    requests_per_s: float
    p50_s: float
    p99_s: float
    errors: int
    tool: str


_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _wrk_seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(match.group(1)) * _WRK_UNITS[match.group(2)] if match else float("nan")


def run_wrk(url: str, connections: int, seconds: int) -> LoadResult:
    wrk = shutil.which("wrk") or "wrk"
    args = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(  # bounded: wrk stops after -d, the timeout is a safety net
        args, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock:
        errors += sum(int(g) for g in sock.groups())
    version = subprocess.run(
        [wrk, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    tool = (version.stdout + version.stderr).split("[")[0].strip() or "wrk"
    return LoadResult(
        float(rps.group(1)) if rps else float("nan"),
        _wrk_seconds(p50.group(1)) if p50 else float("nan"),
        _wrk_seconds(p99.group(1)) if p99 else float("nan"),
        errors,
        f"{tool} -t1 -c{connections} -d{seconds}s",
    )


async def _httpx_load(url: str, connections: int, seconds: int) -> LoadResult:
    """`connections` workers, each with its own keep-alive client (see `slot_clients`),
    requesting `url` back to back for `seconds`. Far weaker than wrk: the generator's own
    CPU is the limit long before a fast server's is."""
    latencies: list[float] = []
    errors = 0
    async with slot_clients(url, connections) as clients:
        end = time.perf_counter() + seconds

        async def worker(http: httpx.AsyncClient) -> None:
            nonlocal errors
            while time.perf_counter() < end:
                started = time.perf_counter()
                try:
                    response = await http.get(url)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker(http) for http in clients))
        elapsed = time.perf_counter() - began
    return LoadResult(
        len(latencies) / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
        errors,
        f"asyncio httpx load generator (not wrk), {connections} connections, {seconds}s",
    )


def load(url: str, connections: int, seconds: int, use_wrk: bool) -> LoadResult:
    if use_wrk:
        return run_wrk(url, connections, seconds)
    return asyncio.run(_httpx_load(url, connections, seconds))


# --- 3. memory ----------------------------------------------------------------------------


async def register_agents(
    service_url: str, first: int, count: int, parallel: int, budget_s: float
) -> int:
    """Register agents mem-<first> .. mem-<first+count-1>, `parallel` at a time."""
    deadline = time.monotonic() + budget_s
    created = 0
    async with httpx.AsyncClient(base_url=service_url, timeout=30.0) as http:
        for start in range(first, first + count, parallel):
            if time.monotonic() > deadline:
                log(f"agent registration stopped by its {budget_s:.0f}s budget at {created}")
                break
            batch = range(start, min(start + parallel, first + count))
            responses = await asyncio.gather(
                *(
                    http.post(
                        "/v1/agents",
                        json={
                            "name": f"mem-{i:05d}",
                            "kind": "chat",
                            "provider": "openai",
                            "model": "gpt-4o-mini",
                        },
                    )
                    for i in batch
                )
            )
            for response in responses:
                if response.status_code != 201:
                    raise RuntimeError(f"creating agent: {response.status_code} {response.text}")
            created += len(batch)
    return created


# --- 4. resilience ------------------------------------------------------------------------


async def resilience_rows(calls: int) -> list[Row]:
    from bench import bench_resilience as br

    plain = br.full_policy(None)
    bounded = br.full_policy(30.0)
    cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("direct await noop()", lambda: br.noop(None)),
        ("policy: bulkhead+breaker+retry", lambda: plain.call(br.noop)),
        ("policy + 30 s attempt timeout", lambda: bounded.call(br.noop)),
    ]
    results = [(label, await br.measure(call, calls)) for label, call in cases]
    base50 = br.percentile(results[0][1], 50)
    base99 = br.percentile(results[0][1], 99)
    rows = []
    for label, samples in results:
        p50, p99 = br.percentile(samples, 50), br.percentile(samples, 99)
        rows.append(
            Row(
                f"resilience: {label}",
                us(p50),
                us(p99),
                f"{p50 / base50:.1f}x / {p99 / base99:.1f}x",
                f"{calls} calls; value = p50 / p99 ratio to the direct await",
            )
        )
    overhead = br.percentile(results[1][1], 50) - base50
    rows.append(
        Row(
            "resilience: **policy overhead per call**",
            us(overhead),
            details="p50(policy) - p50(direct); bench/bench_resilience.py `measure`",
        )
    )
    return rows


def resilience_subprocess(calls: int) -> str:
    """Fallback when bench_resilience's helpers cannot be imported as expected: its own
    table, verbatim."""
    script = Path(__file__).with_name("bench_resilience.py")
    done = subprocess.run(
        [sys.executable, str(script), "--calls", str(calls)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    return (done.stdout + done.stderr).rstrip()


# --- running it ---------------------------------------------------------------------------


@contextlib.contextmanager
def started(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def start_bare(tmp: Path, kind: str, upstream: str | None = None) -> Proc:
    port = free_port()
    forward = ["--upstream", upstream] if upstream else []
    return start_process(
        [sys.executable, "-m", "bench._bare_app", "--kind", kind, "--port", str(port), *forward],
        url=f"http://127.0.0.1:{port}",
        health_path="/health",
        env={"PYTHONPATH": str(ROOT)},
        log_path=tmp / f"bare-{kind}-{port}.log",
    )


def idle_socket_rows(tmp: Path, count: int) -> list[Row]:
    """RSS per idle event socket, and after they close (tests.support.sockets)."""
    with contextlib.suppress(ValueError, OSError):  # room for client and server sockets
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * count)), hard))
    rows = []
    for compression in ("false", "true"):
        env = {**service_env("http://127.0.0.1:9", 16), "BIGTHREE_WS_COMPRESSION": compression}
        with started(start_service(tmp, env=env)) as svc:
            first = asyncio.run(measure_idle(svc.url, svc.popen.pid, count))
            second = asyncio.run(measure_idle(svc.url, svc.popen.pid, count))
        label = "on" if compression == "true" else "off (default)"
        rows += [
            Row(
                f"idle sockets, compression {label}: **per socket**",
                value=f"{first.per_socket(count) / 1024:,.1f} KiB",
                details=f"RSS {mib(first.baseline)} → {mib(first.open_)} with {count:,} open",
            ),
            Row(
                f"idle sockets, compression {label}: after they close",
                value=mib(first.closed),
                details=f"a second round of {count:,}: {mib(second.baseline)} → "
                f"{mib(second.open_)} → {mib(second.closed)} (memory reused)",
            ),
        ]
    return rows


def service_env(fake_url: str, max_concurrent: int) -> dict[str, str]:
    return {
        **provider_env(fake_url),
        "BIGTHREE_MAX_CONCURRENT_TASKS": str(max_concurrent),
        # the provider's bulkhead (default 32, fail-fast) and connection pool (default 100)
        # would otherwise cap the concurrency below the number of concurrent tasks
        "BIGTHREE_BULKHEAD_MAX_CONCURRENT": str(max(max_concurrent, 32)),
        "BIGTHREE_PROVIDER_MAX_CONNECTIONS": str(max(max_concurrent, 100)),
        "BIGTHREE_LOG_LEVEL": "WARNING",
    }


def machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    nproc = len(os.sched_getaffinity(0))
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return [
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"- machine: nproc={nproc}, {cpu}, Linux {platform.release()}",
        f"- python {platform.python_version()}, uvicorn {uvicorn.__version__} "
        f"(loop=auto → {loop}, http=auto → {http}, 1 worker)",
    ]


def render(rows: list[Row], header: list[str]) -> str:
    lines = [*header, "", "| figure | p50 | p99 | value | details |", "|---|---:|---:|---:|---|"]
    lines += [f"| {r.figure} | {r.p50} | {r.p99} | {r.value} | {r.details} |" for r in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--latency-ms", type=float, default=50.0, help="fake upstream latency")
    p.add_argument("--samples-c1", type=int, default=200, help="tasks at concurrency 1")
    p.add_argument("--concurrency", type=int, default=100, help="the high concurrency level")
    p.add_argument("--rounds", type=int, default=5, help="rounds at the high concurrency")
    p.add_argument(
        "--phase-budget-s",
        type=float,
        default=40.0,
        help="time cap per latency series (stops early, reports n)",
    )
    p.add_argument("--health-seconds", type=int, default=8)
    p.add_argument("--health-connections", type=int, default=50)
    p.add_argument(
        "--load",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator for /health (auto: wrk if installed)",
    )
    p.add_argument("--agents", type=int, default=1000, help="agents registered for memory")
    p.add_argument("--resilience-calls", type=int, default=20_000)
    p.add_argument("--idle-sockets", type=int, default=1000, help="idle event sockets opened")
    p.add_argument(
        "--hot-seconds",
        type=int,
        default=8,
        help="measuring window of each hot-path throughput row",
    )
    p.add_argument(
        "--only",
        choices=["all", "hot", "tasks", "http", "browser"],
        default="all",
        help="hot: only the hot-path rows (bench/hotpath.py); tasks / http: only its task "
        "rows / its HTTP and WebSocket rows; browser: only section 5 (bench/bench_browser.py)",
    )
    p.add_argument("--browser-samples", type=int, default=50, help="actions timed per kind")
    args = p.parse_args(argv)
    for name in (
        "samples_c1",
        "concurrency",
        "rounds",
        "health_seconds",
        "health_connections",
        "agents",
        "resilience_calls",
        "browser_samples",
        "idle_sockets",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def browser_rows(samples: int) -> list[Row]:
    from app.tools.browser.executable import BrowserUnavailable, choose
    from bench import bench_browser

    try:
        choose(None, None)
    except BrowserUnavailable as exc:
        return [Row("browser: skipped", details=exc.message)]
    return [Row(**row) for row in asyncio.run(bench_browser.measure(samples))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.hotpath import hot_rows  # here: it imports this module

    # the load generator's own full collections walked its ~80,000 objects from imports
    # (15-25 ms each) and landed inside measured rounds: keep them out, as the service does
    settle_after_startup()
    if args.only == "browser":
        began = time.monotonic()
        header = machine()
        log("browser: time per action, memory of one page")
        rows = browser_rows(args.browser_samples)
        header.append(f"- total bench time: {time.monotonic() - began:.0f} s; section 5 only")
        print(render(rows, header))
        return 0
    began = time.monotonic()
    rows: list[Row] = []
    latency_s = args.latency_ms / 1000.0
    conc = args.concurrency
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    if args.load == "wrk" and shutil.which("wrk") is None:
        log("wrk is not installed (apt-get install -y wrk)")
        return 2
    header = machine()
    load_at_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bigthree-bench-") as tmp_name:
        tmp = Path(tmp_name)
        rows += hot_rows(
            tmp,
            use_wrk,
            args.hot_seconds,
            task_rows=args.only != "http",
            http_rows=args.only != "tasks",
        )
        if args.only in ("hot", "tasks", "http"):
            return _finish(rows, header, began, load_at_start, "")
        with started(start_fake_upstream(tmp)) as fake_proc:
            fake = FakeUpstreamClient(fake_proc.url)
            fake.script(MODEL, [{"latency_s": latency_s, "repeat": -1}])
            fixed = f"fake latency {args.latency_ms:g} ms"

            # 1. task overhead
            with started(start_service(tmp, env=service_env(fake_proc.url, max(conc, 16)))) as svc:
                rss_tasks_start = rss_bytes(svc.popen.pid)
                log("task overhead at concurrency 1")
                d1 = asyncio.run(
                    direct_latencies(fake_proc.url, 1, args.samples_c1, 20, args.phase_budget_s)
                )
                s1 = asyncio.run(
                    service_latencies(
                        svc.url, ["bench-c1"], args.samples_c1, 20, args.phase_budget_s
                    )
                )
                log(f"task overhead at concurrency {conc}")
                dn = asyncio.run(
                    direct_latencies(fake_proc.url, conc, args.rounds, 1, args.phase_budget_s)
                )
                sn = asyncio.run(
                    service_latencies(
                        svc.url,
                        [f"bench-c{conc}-{i}" for i in range(conc)],
                        args.rounds,
                        1,
                        args.phase_budget_s,
                    )
                )
                rss_tasks_end = rss_bytes(svc.popen.pid)
                rows += overhead_rows("task c=1", d1, s1, fixed)
                rows += overhead_rows(
                    f"task c={conc}", dn, sn, f"{fixed}; {args.rounds} rounds x {conc}"
                )

                # 2. /health throughput
                log("/health throughput")
                with (
                    started(start_bare(tmp, "fastapi")) as bare,
                    started(start_bare(tmp, "asgi")) as raw,
                ):
                    targets = [
                        ("service", svc.url),
                        ("bare FastAPI app", bare.url),
                        ("bare raw ASGI app", raw.url),
                    ]
                    results: dict[str, LoadResult] = {}
                    for label, url in targets:
                        load(url + "/health", args.health_connections, 1, use_wrk)  # warm up
                        results[label] = load(
                            url + "/health", args.health_connections, args.health_seconds, use_wrk
                        )
                svc_rps = results["service"].requests_per_s
                for label, result in results.items():
                    errors = f"; {result.errors} errors" if result.errors else ""
                    rows.append(
                        Row(
                            f"/health req/s: {label}",
                            ms(result.p50_s),
                            ms(result.p99_s),
                            f"{result.requests_per_s:,.0f} req/s",
                            f"{result.tool}{errors}; p50/p99 = request latency",
                        )
                    )
                for label in ("bare FastAPI app", "bare raw ASGI app"):
                    rows.append(
                        Row(
                            f"/health ratio: service / {label}",
                            value=ratio(svc_rps, results[label].requests_per_s),
                            details="requests/s",
                        )
                    )
                rows.append(
                    Row(
                        "RSS of the task-bench service",
                        value=mib(rss_tasks_end),
                        details=f"after {conc + 1} agents and "
                        f"{len(s1.samples) + len(sn.samples) + 20 + conc} tasks "
                        f"(at start {mib(rss_tasks_start)})",
                    )
                )

        # 3. memory (a fresh service; its provider is never called)
        log(f"memory: registering {args.agents} agents")
        with started(start_service(tmp, env=service_env("http://127.0.0.1:9", 16))) as svc:
            time.sleep(1.0)  # let start-up settle (lifespan, first event flush)
            before = rss_bytes(svc.popen.pid)
            # the first tenth separately: one-time warm-up (code paths, caches) is not per agent
            head = max(1, args.agents // 10)
            created = asyncio.run(register_agents(svc.url, 0, head, 10, 30.0))
            time.sleep(0.5)
            middle = rss_bytes(svc.popen.pid)
            created += asyncio.run(register_agents(svc.url, head, args.agents - head, 10, 60.0))
            time.sleep(1.0)  # let the event writer flush the agent.created events
            after = rss_bytes(svc.popen.pid)
        rest = max(created - head, 1)
        rows += [
            Row(
                "RSS: service right after start",
                value=mib(before),
                details="VmRSS from /proc/<pid>/status, fresh data dir, no traffic yet",
            ),
            Row(
                f"RSS: after registering {created:,} agents",
                value=mib(after),
                details=f"same process (after the first {head:,}: {mib(middle)})",
            ),
            Row(
                "RSS: **per agent**",
                value=f"{(after - before) / max(created, 1):,.0f} B",
                details=f"(after - start) / {created:,}",
            ),
            Row(
                "RSS: per agent, marginal",
                value=f"{(after - middle) / rest:,.0f} B",
                details=f"(after - after the first {head:,}) / {rest:,}: without warm-up",
            ),
        ]

    # 3b. idle event sockets, with WebSocket compression off (the default) and on
    log(f"memory: {args.idle_sockets} idle event sockets")
    rows += idle_socket_rows(tmp, args.idle_sockets)

    # 4. resilience
    log("resilience policy overhead")
    verbatim = ""
    try:
        rows += asyncio.run(resilience_rows(args.resilience_calls))
    except (ImportError, AttributeError, TypeError) as exc:
        log(f"bench_resilience helpers unusable ({exc!r}); running it as a subprocess")
        verbatim = resilience_subprocess(args.resilience_calls)

    # 5. browser agents
    log("browser: time per action, memory of one page")
    rows += browser_rows(args.browser_samples)

    return _finish(rows, header, began, load_at_start, verbatim)


def _finish(
    rows: list[Row], header: list[str], began: float, load_at_start: float, verbatim: str
) -> int:
    header.append(
        f"- total bench time: {time.monotonic() - began:.0f} s; load average "
        f"{load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end "
        "(other work on the machine skews the figures)"
    )
    print(render(rows, header))
    if verbatim:
        print(f"\nbench/bench_resilience.py, verbatim:\n\n```\n{verbatim}\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
