"""The hot-path rows of the benchmark: CPU per task, sequential overhead, polling, reads,
ingest, fan-out and idle sockets — each beside a floor measured in the same run.

The service runs pinned to CPU 0; the raw-ASGI stub (`bench/_stub.py`), the bare apps and
this load generator run on CPU 1 (when the machine has two). CPU per task is read from the
service's `/proc/<pid>/stat` (all threads), so it holds up better under other load on the
machine than throughput does. Only the public API is used, so the same rows run against
older code for a before/after comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.run import (
    TASK_TIMEOUT_S,
    Latencies,
    LoadResult,
    Row,
    load,
    log,
    mib,
    ms,
    percentile,
    ratio,
)
from bench.stamped_ws import StampedSubscriber
from tests.support.procs import Proc, free_port, start_process, start_service
from tests.support.sockets import rss_bytes

ROOT = Path(__file__).resolve().parent.parent
FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "interrupted"}


# --- processes ----------------------------------------------------------------------------


_CPUS = frozenset(os.sched_getaffinity(0))  # read once: this process pins itself later


def two_cpus() -> bool:
    return len(_CPUS) >= 2


def pin(pid: int, cpu: int) -> None:
    """Pin a process (all its threads) to one CPU, when there are two to split."""
    if not two_cpus():
        return
    _set_affinity(pid, {cpu})


def _set_affinity(pid: int, cpus: set[int] | frozenset[int]) -> None:
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def load_generator_on(cpu: int) -> Iterator[None]:
    """Run this process, the load generator, on `cpu` for the block (the processes it starts
    are pinned on their own). Left free, the scheduler wakes it on the CPU of whoever woke
    it: the service's, where it then takes turns with the service it is timing — a fan-out
    to a thousand sockets wakes it a thousand times."""
    pin(os.getpid(), cpu)
    try:
        yield
    finally:
        _set_affinity(os.getpid(), _CPUS)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_stub(tmp: Path) -> Proc:
    port = free_port()
    proc = start_process(
        [sys.executable, "-m", "bench._stub", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/health",
        env={"PYTHONPATH": str(ROOT)},
        log_path=tmp / f"stub-{port}.log",
    )
    pin(proc.popen.pid, 1)
    return proc


def hot_env(stub_url: str, *, history: bool = True) -> dict[str, str]:
    """The service's settings for the hot-path figures: the stub as upstream, limits above
    the load, warnings only in the log, ten turns of chat history unless `history` is off."""
    return {
        "OPENAI_BASE_URL": f"{stub_url}/v1",
        "BIGTHREE_MAX_CONCURRENT_TASKS": "256",
        "BIGTHREE_BULKHEAD_MAX_CONCURRENT": "256",
        "BIGTHREE_PROVIDER_MAX_CONNECTIONS": "256",
        "BIGTHREE_MAX_QUEUED_TASKS_PER_AGENT": "1000",
        "BIGTHREE_LOG_LEVEL": "WARNING",
        "BIGTHREE_CHAT_HISTORY_TURNS": "10" if history else "0",
    }


def hot_service(tmp: Path, stub_url: str, *, history: bool = True) -> Proc:
    proc = start_service(tmp, env=hot_env(stub_url, history=history))
    pin(proc.popen.pid, 0)
    return proc


# --- a cheap client -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def session(limit: int = 0) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    timeout = aiohttp.ClientTimeout(total=TASK_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        yield http


async def create_agents(
    http: aiohttp.ClientSession, url: str, names: list[str], model: str
) -> None:
    for name in names:
        body = {"name": name, "kind": "chat", "provider": "openai", "model": model}
        async with http.post(f"{url}/v1/agents", json=body) as response:
            if response.status != 201:
                raise RuntimeError(f"creating {name}: {response.status} {await response.text()}")


async def submit(http: aiohttp.ClientSession, url: str, agent: str) -> str:
    async with http.post(f"{url}/v1/agents/{agent}/tasks", json={"prompt": "bench"}) as r:
        if r.status != 202:
            raise RuntimeError(f"submit: {r.status} {await r.text()}")
        task_id: str = (await r.json())["id"]
        return task_id


async def submit_held(http: aiohttp.ClientSession, url: str, agent: str) -> None:
    """Submit a task and hold the request until it has ended (`?wait=`, answered 200)."""
    path = f"{url}/v1/agents/{agent}/tasks?wait={TASK_TIMEOUT_S:g}"
    async with http.post(path, json={"prompt": "bench"}) as r:
        if r.status != 200:
            raise RuntimeError(f"held submit: {r.status} {await r.text()}")
        if (await r.json())["state"] != "succeeded":
            raise RuntimeError("held submit: the task did not succeed")


class Finishes:
    """One WebSocket on `task.*`: resolves a waiter when its task's terminal event arrives
    (even if the event came before the waiter)."""

    def __init__(self) -> None:
        self._done: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self.failed = 0

    async def follow(self, http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(f"{url}/v1/events", params={"limit": "1"}) as r:
            last = (await r.json())["last_seq"]
        ws_url = url.replace("http://", "ws://") + f"/v1/events/ws?type=task.*&after_seq={last}"
        async with http.ws_connect(ws_url, max_msg_size=0) as ws:
            self.ready.set()
            async for message in ws:
                now = time.perf_counter()
                event = json.loads(message.data)
                kind = event["type"].removeprefix("task.")
                if kind not in FINISHED:
                    continue
                if kind != "succeeded":
                    self.failed += 1
                task_id = event["task_id"]
                future = self._waiting.pop(task_id, None)
                if future is None:
                    self._done[task_id] = now
                elif not future.done():
                    future.set_result(now)

    async def wait(self, task_id: str) -> float:
        if task_id in self._done:
            return self._done.pop(task_id)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[task_id] = future
        try:
            async with asyncio.timeout(TASK_TIMEOUT_S):
                return await future
        finally:
            self._waiting.pop(task_id, None)

    ready: asyncio.Event

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(cls, http: aiohttp.ClientSession, url: str) -> AsyncIterator[Finishes]:
        self = cls()
        self.ready = asyncio.Event()
        follower = asyncio.create_task(self.follow(http, url))
        try:
            async with asyncio.timeout(10):
                await self.ready.wait()
            yield self
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower


async def poll_until_finished(
    http: aiohttp.ClientSession,
    url: str,
    task_id: str,
    every_s: float,
    stopped: Callable[[], bool] = lambda: False,
) -> float:
    give_up = time.monotonic() + TASK_TIMEOUT_S
    while time.monotonic() < give_up and not stopped():
        async with http.get(f"{url}/v1/tasks/{task_id}") as r:
            state = (await r.json()).get("state")
        if state in FINISHED:
            return time.perf_counter()
        await asyncio.sleep(every_s)
    raise TimeoutError(f"task {task_id} did not finish")


# --- figures ----------------------------------------------------------------------------


async def direct_calls(stub_url: str, model: str, concurrency: int, count: int) -> Latencies:
    body = {"model": model, "messages": [{"role": "user", "content": "bench"}]}
    samples: list[float] = []
    async with session() as http:

        async def one() -> None:
            started = time.perf_counter()
            async with http.post(f"{stub_url}/v1/chat/completions", json=body) as r:
                await r.read()
            samples.append(time.perf_counter() - started)

        for _ in range(max(1, count // concurrency)):
            await asyncio.gather(*(one() for _ in range(concurrency)))
    return Latencies(samples[concurrency:] if len(samples) > concurrency else samples)


async def direct_closed_loop(stub_url: str, model: str, clients: int, seconds: float) -> Latencies:
    """`clients` callers of the stub, each calling again as soon as its answer is read, for
    `seconds` after a 2 s warm-up: the calls started and finished inside the window (the
    floor of `saturate`'s latencies)."""
    body = {"model": model, "messages": [{"role": "user", "content": "bench"}]}
    calls: list[tuple[float, float]] = []  # (started, finished)
    async with session() as http:
        warm_until = time.perf_counter() + 2.0
        end = warm_until + seconds

        async def caller() -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                async with http.post(f"{stub_url}/v1/chat/completions", json=body) as r:
                    await r.read()
                calls.append((started, time.perf_counter()))

        await asyncio.gather(*(caller() for _ in range(clients)))
    return Latencies([done - start for start, done in calls if start >= warm_until and done <= end])


async def task_latencies(url: str, model: str, concurrency: int, count: int, tag: str) -> Latencies:
    """Submit → terminal event on the WebSocket, `concurrency` agents at once."""
    agents = [f"{tag}-{i}" for i in range(concurrency)]
    samples: list[float] = []
    async with session() as http, Finishes.opened(http, url) as finishes:
        await create_agents(http, url, agents, model)

        async def one(agent: str) -> None:
            started = time.perf_counter()
            task_id = await submit(http, url, agent)
            samples.append(await finishes.wait(task_id) - started)

        for _ in range(max(1, count // concurrency)):
            await asyncio.gather(*(one(a) for a in agents))
    return Latencies(samples[concurrency:] if len(samples) > concurrency else samples)


@dataclass
class Throughput:
    tasks_per_s: float
    cpu_ms_per_task: float
    tasks: int
    latency: Latencies
    unfinished: int = 0

    @property
    def note(self) -> str:
        return f"; {self.unfinished} tasks not seen finishing" if self.unfinished else ""

    @classmethod
    def summed(cls, windows: list[Throughput]) -> Throughput:
        """Several equally long windows as one: rates averaged, CPU per task over all."""
        tasks = sum(w.tasks for w in windows)
        return cls(
            sum(w.tasks_per_s for w in windows) / len(windows),
            sum(w.cpu_ms_per_task * w.tasks for w in windows) / max(tasks, 1),
            tasks,
            Latencies([x for w in windows for x in w.latency.samples]),
            sum(w.unfinished for w in windows),
        )


async def saturate(
    url: str,
    pid: int,
    *,
    clients: int,
    seconds: float,
    tag: str,
    poll_every_s: float | None,
    model: str = "lat-0",
    held: bool = False,
) -> Throughput:
    """`clients` closed-loop clients (one agent each) for `seconds` after a 2 s warm-up:
    completed tasks/s and the service's CPU per completed task. `poll_every_s` set: each
    client polls GET /v1/tasks/{id} instead of waiting for the event; `held`: each holds
    its submit open until the task has ended (`?wait=`) instead."""
    agents = [f"{tag}-{i}" for i in range(clients)]
    done: list[float] = []
    latencies: list[tuple[float, float]] = []  # (started, finished)
    stop = False
    async with session() as http, Finishes.opened(http, url) as finishes:
        await create_agents(http, url, agents, model)

        unfinished = 0
        errors: list[str] = []

        async def client(agent: str) -> None:
            nonlocal unfinished
            while not stop:
                started = time.perf_counter()
                if held:
                    try:
                        await submit_held(http, url, agent)
                    except (TimeoutError, aiohttp.ClientError):
                        unfinished += 1
                        continue
                    finished = time.perf_counter()
                else:
                    try:
                        task_id = await submit(http, url, agent)
                    except aiohttp.ClientError as exc:  # counted, not fatal: the row says so
                        errors.append(repr(exc))
                        await asyncio.sleep(0.1)
                        continue
                    try:
                        if poll_every_s is None:
                            finished = await finishes.wait(task_id)
                        else:
                            finished = await poll_until_finished(
                                http, url, task_id, poll_every_s, lambda: stop
                            )
                    except (TimeoutError, aiohttp.ClientError):
                        unfinished += 1
                        continue
                done.append(finished)
                latencies.append((started, finished))

        runners = [asyncio.create_task(client(a)) for a in agents]
        try:
            await asyncio.sleep(2.0)
            t0, c0, n0 = time.perf_counter(), cpu_seconds(pid), len(done)
            await asyncio.sleep(seconds)
            t1, c1, n1 = time.perf_counter(), cpu_seconds(pid), len(done)
        finally:
            stop = True
            await asyncio.wait(runners, timeout=TASK_TIMEOUT_S)
            for runner in runners:
                runner.cancel()
        crashed = [r.exception() for r in runners if r.done() and not r.cancelled()]
        crashed = [e for e in crashed if e is not None]
        if crashed:
            raise RuntimeError(f"a bench client failed: {crashed[0]!r}")
        if errors:
            log(f"{len(errors)} submits failed, e.g. {errors[0]}")
    tasks = n1 - n0
    # latency of the tasks started and finished inside the window: the first round (every
    # client submitting at once, connections cold) is warm-up, not the steady state
    inside = [end - start for start, end in latencies if start >= t0 and end <= t1]
    return Throughput(
        tasks / (t1 - t0),
        (c1 - c0) * 1000 / max(tasks, 1),
        tasks,
        Latencies(inside),
        unfinished,
    )


def wrk_post(url: str, body: dict[str, Any], connections: int, seconds: int) -> LoadResult:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    try:
        return _wrk([f"-s{script}"], url, connections, seconds)
    finally:
        script.unlink()


def _wrk(extra: list[str], url: str, connections: int, seconds: int) -> LoadResult:
    from bench.run import _wrk_seconds  # the same parsing as the /health rows

    wrk = shutil.which("wrk") or "wrk"
    args = ["taskset", "-c", "1", wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if not two_cpus() or shutil.which("taskset") is None:
        args = args[3:]
    out = subprocess.run(
        [*args, *extra, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    import re

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return LoadResult(
        float(rps.group(1)) if rps else float("nan"),
        _wrk_seconds(p50.group(1)) if p50 else float("nan"),
        _wrk_seconds(p99.group(1)) if p99 else float("nan"),
        int(non2xx.group(1)) if non2xx else 0,
        f"wrk -t1 -c{connections} -d{seconds}s",
    )


def with_cpu(pid: int, run: Callable[[], LoadResult]) -> LoadResult:
    """`run()`, with the CPU time process `pid` spent per request added to its details
    (a figure that holds up better than requests/s on a shared machine)."""
    before = cpu_seconds(pid)
    result = run()
    spent = cpu_seconds(pid) - before
    served = result.requests_per_s * float(result.tool.split("-d")[-1].split("s")[0] or 1)
    if served > 0:
        result.tool += f"; **{spent / served * 1e6:,.0f} µs CPU/request**"
    return result


def http_rate(url: str, connections: int, seconds: int, use_wrk: bool) -> LoadResult:
    if use_wrk:
        return _wrk([], url, connections, seconds)
    return load(url, connections, seconds, False)


async def fan_out(
    ws_url: str, post: Callable[[int], Awaitable[None]], subscribers: int, rounds: int
) -> tuple[Latencies, Latencies, list[StampedSubscriber]]:
    """Open `subscribers` sockets on `ws_url`; `rounds` times, post one event and time its
    arrival at every subscriber: by the kernel's receive time (`bench/stamped_ws.py`) and by
    when this process read it. Returns both and the open sockets (closed by the caller, so
    idle-socket memory can be read first)."""
    sockets = [await StampedSubscriber.connect(ws_url) for _ in range(subscribers)]
    arrived: list[float] = []
    read: list[float] = []
    for n in range(rounds):
        # the bare app relays the posted JSON as is, the service sends it compact
        waits = [ws.expect(f'"n":{n}}}'.encode(), f'"n": {n}}}'.encode()) for ws in sockets]
        await asyncio.sleep(0.05)
        started = time.time()
        await post(n)
        async with asyncio.timeout(30):
            for arrival in await asyncio.gather(*waits):
                arrived.append(arrival.kernel - started)
                read.append(arrival.read - started)
    return Latencies(arrived), Latencies(read), sockets


def close_sockets(sockets: list[StampedSubscriber]) -> None:
    for ws in sockets:
        ws.close()


# --- the rows -----------------------------------------------------------------------------


def hot_rows(
    tmp: Path, use_wrk: bool, seconds: int, *, task_rows: bool = True, http_rows: bool = True
) -> list[Row]:
    from bench.run import start_bare

    rows: list[Row] = []
    stub = start_stub(tmp)
    bare = start_bare(tmp, "fastapi")
    pin(bare.popen.pid, 0)  # the floor runs where the service runs
    try:
        sections = [lambda: _task_rows(tmp, stub.url, seconds)] if task_rows else []
        if http_rows:
            sections.append(
                lambda: _http_rows(tmp, stub.url, bare.url, use_wrk, seconds, bare.popen.pid)
            )
        with load_generator_on(1):
            for section in sections:
                try:
                    rows += section()
                except Exception as exc:  # one broken section must not cost the others' rows
                    log(f"a hot-path section failed: {exc!r}")
                    rows.append(Row("(section failed)", details=repr(exc)[:200]))
    finally:
        bare.stop()
        stub.stop()
    return rows


def _proxied_calls(tmp: Path, stub_url: str) -> Latencies:
    """The 50-client row's floor on this machine: the same 50 calls at once through a bare
    proxy (`bench._bare_app`, kind `proxy`) on the service's CPU — what uvicorn and aiohttp
    alone cost a burst, before any work of the service's own (bench/README.md, run 15)."""
    from bench.run import start_bare

    proxy = start_bare(tmp, "proxy", upstream=stub_url)
    pin(proxy.popen.pid, 0)
    try:
        return asyncio.run(direct_calls(proxy.url, "lat-200", 50, 500))
    finally:
        proxy.stop()


def _task_rows(tmp: Path, stub_url: str, seconds: int) -> list[Row]:
    rows: list[Row] = []
    # sequential overhead, 0 ms upstream
    log("hot path: sequential overhead")
    direct1 = asyncio.run(direct_calls(stub_url, "lat-0", 1, 300))
    svc = hot_service(tmp, stub_url)
    try:
        seq = asyncio.run(task_latencies(svc.url, "lat-0", 1, 300, "seq"))
        rows += [
            latency_row(
                "floor: direct call to the stub (0 ms)",
                direct1,
                "aiohttp client → raw ASGI stub",
            ),
            latency_row(
                "sequential task: submit → terminal event",
                seq,
                "one agent, 0 ms upstream",
            ),
            overhead_row(
                "sequential task: **overhead** (task - direct)",
                seq,
                direct1,
                "target p50 ≤ 2 ms, p99 ≤ 5 ms; value = p50 ratio to the floor",
            ),
        ]
        log("hot path: 50 clients @ 200 ms, each in its own loop")
        direct_loop = asyncio.run(direct_closed_loop(stub_url, "lat-200", 50, seconds))

        def fifty_clients(tag: str, *, held: bool) -> Throughput:
            return asyncio.run(
                saturate(
                    svc.url,
                    svc.popen.pid,
                    clients=50,
                    seconds=seconds,
                    tag=tag,
                    poll_every_s=None,
                    model="lat-200",
                    held=held,
                )
            )

        clients50 = fifty_clients("c50", held=False)
        rows += [
            latency_row(
                "floor: 50 closed-loop direct callers @ 200 ms",
                direct_loop,
                "each calls again once answered",
            ),
            overhead_row(
                "50 clients @ 200 ms: **overhead**",
                clients50.latency,
                direct_loop,
                f"n={len(clients50.latency.samples)}; task p50 {ms(clients50.latency.p50)}; each "
                f"client submits again once its task has ended; target p50 overhead ≤ 10 ms"
                f"{clients50.note}",
            ),
        ]
        held50 = fifty_clients("h50", held=True)
        rows.append(
            overhead_row(
                "50 clients @ 200 ms, each holding its submit (`?wait=`): overhead",
                held50.latency,
                direct_loop,
                f"n={len(held50.latency.samples)}; the same clients waiting without polling "
                f"or an event stream{held50.note}",
            )
        )
        log("hot path: a burst of 50 @ 200 ms")
        # ten rounds of 50 (the first is left out as warm-up): three rounds moved the p50
        # by ±10 ms from run to run
        direct50 = asyncio.run(direct_calls(stub_url, "lat-200", 50, 500))
        proxied50 = _proxied_calls(tmp, stub_url)
        burst50 = asyncio.run(task_latencies(svc.url, "lat-200", 50, 500, "b50"))
        rows += [
            latency_row(
                "floor: a burst of 50 direct calls @ 200 ms",
                direct50,
                "rounds of 50 at the same instant",
            ),
            overhead_row(
                "floor: a burst of 50 through a bare proxy @ 200 ms: overhead",
                proxied50,
                direct50,
                f"n={len(proxied50.samples)}; raw ASGI app → aiohttp → stub, pinned like the "
                "service; stores nothing",
            ),
            overhead_row(
                "a burst of 50 tasks @ 200 ms: **overhead**",
                burst50,
                direct50,
                f"n={len(burst50.samples)}; task p50 {ms(burst50.p50)}; the 50 clients in "
                "lock-step rounds, all submitting at once: no target of its own",
            ),
        ]
        log("hot path: saturation, history on")
        sat = asyncio.run(
            saturate(
                svc.url, svc.popen.pid, clients=100, seconds=seconds, tag="sat", poll_every_s=None
            )
        )
        rows.append(
            Row(
                "saturation 100 clients, history on: **CPU per task**",
                ms(sat.latency.p50),
                ms(sat.latency.p99),
                f"{sat.cpu_ms_per_task:.2f} ms",
                f"{sat.tasks_per_s:,.0f} tasks/s on one core ({sat.tasks} tasks); "
                f"p50/p99 = task latency; target ≤ 2.5 ms CPU{sat.note}",
            )
        )
        log("hot path: 200 clients, event-driven, polling every 2 ms, polling, event-driven")
        # alternated and summed: on a shared machine one window's figure moves by ±15 %; in
        # this order (ABBA) a steady drift of the machine's speed weighs on both alike
        windows = {
            (kind, round_): asyncio.run(
                saturate(
                    svc.url,
                    svc.popen.pid,
                    clients=200,
                    seconds=seconds,
                    tag=f"{kind}200-{round_}",
                    poll_every_s=None if kind == "ev" else 0.002,
                )
            )
            for kind, round_ in (("ev", 0), ("poll", 0), ("poll", 1), ("ev", 1))
        }
        events200 = Throughput.summed([windows["ev", 0], windows["ev", 1]])
        poll200 = Throughput.summed([windows["poll", 0], windows["poll", 1]])
        rows += [
            Row(
                "200 clients, event-driven",
                ms(events200.latency.p50),
                ms(events200.latency.p99),
                f"{events200.tasks_per_s:,.0f} tasks/s",
                f"CPU {events200.cpu_ms_per_task:.2f} ms/task{events200.note}",
            ),
            Row(
                "200 clients polling GET /v1/tasks/{id} every 2 ms",
                ms(poll200.latency.p50),
                ms(poll200.latency.p99),
                f"{poll200.tasks_per_s:,.0f} tasks/s",
                f"**{ratio(poll200.tasks_per_s, events200.tasks_per_s)}** of event-driven "
                f"(target ≥ 0.8x); CPU {poll200.cpu_ms_per_task:.2f} ms/task{poll200.note}",
            ),
        ]
    finally:
        svc.stop()
    log("hot path: saturation, history off")
    off = hot_service(tmp, stub_url, history=False)
    try:
        sat_off = asyncio.run(
            saturate(
                off.url, off.popen.pid, clients=100, seconds=seconds, tag="sat", poll_every_s=None
            )
        )
        rows.append(
            Row(
                "saturation 100 clients, history off: **CPU per task**",
                ms(sat_off.latency.p50),
                ms(sat_off.latency.p99),
                f"{sat_off.cpu_ms_per_task:.2f} ms",
                f"{sat_off.tasks_per_s:,.0f} tasks/s on one core ({sat_off.tasks} "
                f"tasks); BIGTHREE_CHAT_HISTORY_TURNS=0{sat_off.note}",
            )
        )
    finally:
        off.stop()
    return rows


def _http_rows(
    tmp: Path, stub_url: str, bare_url: str, use_wrk: bool, seconds: int, bare_pid: int
) -> list[Row]:
    rows: list[Row] = []
    svc = hot_service(tmp, stub_url)
    try:
        floor = with_cpu(bare_pid, lambda: http_rate(bare_url + "/health", 50, seconds, use_wrk))
        rows.append(
            Row(
                "floor: bare FastAPI /health",
                ms(floor.p50_s),
                ms(floor.p99_s),
                f"{floor.requests_per_s:,.0f} req/s",
                floor.tool,
            )
        )

        def rate_row(label: str, result: LoadResult, target: str) -> Row:
            errors = f"; {result.errors} non-2xx" if result.errors else ""
            return Row(
                label,
                ms(result.p50_s),
                ms(result.p99_s),
                f"{result.requests_per_s:,.0f} req/s",
                f"**{ratio(result.requests_per_s, floor.requests_per_s)}** of the floor;"
                f" {target}{errors}; {result.tool.split('; ', 1)[-1]}",
            )

        log("hot path: /health, GET /v1/tasks/{id}, POST /v1/events")
        pid = svc.popen.pid
        health = with_cpu(pid, lambda: http_rate(svc.url + "/health", 50, seconds, use_wrk))
        rows.append(rate_row("/health: service", health, "target ≥ 0.9x"))

        async def prepare() -> tuple[str, str]:
            async with session() as http, Finishes.opened(http, svc.url) as finishes:
                await create_agents(http, svc.url, ["reader", "live"], "lat-0")
                done = await submit(http, svc.url, "reader")
                await finishes.wait(done)
                # a task that stays running while it is read (the stub answers in 60 s)
                async with http.post(
                    f"{svc.url}/v1/agents",
                    json={"name": "slow", "provider": "openai", "model": "lat-60000"},
                ) as r:
                    assert r.status == 201, await r.text()
                live = await submit(http, svc.url, "slow")
                return done, live

        finished_id, live_id = asyncio.run(prepare())
        if use_wrk:
            got = with_cpu(
                pid, lambda: http_rate(f"{svc.url}/v1/tasks/{finished_id}", 50, seconds, True)
            )
            rows.append(rate_row("GET /v1/tasks/{id}: finished task", got, "target ≥ 5,000"))
            got = with_cpu(
                pid, lambda: http_rate(f"{svc.url}/v1/tasks/{live_id}", 50, seconds, True)
            )
            rows.append(rate_row("GET /v1/tasks/{id}: running task", got, "target ≥ 5,000"))
            ingest = with_cpu(
                pid,
                lambda: wrk_post(
                    svc.url + "/v1/events",
                    {"type": "bench.ingest", "payload": {"k": "v", "n": 1}},
                    50,
                    seconds,
                ),
            )
            rows.append(
                rate_row(
                    "POST /v1/events ingest, 50 connections", ingest, "target ≥ 5,000 events/s"
                )
            )
        else:
            rows.append(Row("GET /v1/tasks/{id}, POST /v1/events", details="need wrk"))

        log("hot path: fan-out to 1,000 subscribers and idle sockets")
        try:
            rows += asyncio.run(_fanout_rows(svc, tmp))
        except Exception as exc:
            log(f"fan-out failed: {exc!r}")
            rows.append(Row("fan-out (failed)", details=repr(exc)[:200]))
    finally:
        svc.stop()
    return rows


async def _fanout_rows(svc: Proc, tmp: Path) -> list[Row]:
    from bench.run import start_bare

    rows: list[Row] = []
    subscribers, rounds = 1000, 20
    bare = start_bare(tmp, "broadcast")
    pin(bare.popen.pid, 0)
    try:
        async with session() as http:

            async def post_bare(n: int) -> None:
                async with http.post(
                    f"{bare.url}/publish",
                    data=json.dumps({"type": "bench.fanout", "payload": {"n": n}}),
                ) as r:
                    await r.read()

            await asyncio.sleep(1.0)
            bare_before = rss_bytes(bare.popen.pid)
            floor, floor_read, held = await fan_out(
                bare.url.replace("http", "ws") + "/ws", post_bare, subscribers, rounds
            )
            await asyncio.sleep(1.0)
            bare_idle = rss_bytes(bare.popen.pid)
            close_sockets(held)
    finally:
        bare.stop()
    async with session() as http:
        async with http.get(f"{svc.url}/v1/events", params={"limit": "1"}) as r:
            last = (await r.json())["last_seq"]

        async def post(n: int) -> None:
            async with http.post(
                f"{svc.url}/v1/events", json={"type": "bench.fanout", "payload": {"n": n}}
            ) as r:
                assert r.status == 201, await r.text()

        await asyncio.sleep(1.0)
        before = rss_bytes(svc.popen.pid)
        ws_url = svc.url.replace("http", "ws") + f"/v1/events/ws?type=bench.fanout&after_seq={last}"
        got, got_read, held = await fan_out(ws_url, post, subscribers, rounds)
        await asyncio.sleep(1.0)
        idle = rss_bytes(svc.popen.pid)
        close_sockets(held)
        await asyncio.sleep(2.0)
        after = rss_bytes(svc.popen.pid)

    def read_by_client(read: Latencies) -> str:
        return f"read by the client p50 / p99 {ms(read.p50)} / {ms(read.p99)}"

    rows += [
        Row(
            f"floor: bare FastAPI broadcast to {subscribers:,} sockets",
            ms(floor.p50),
            ms(floor.p99),
            details=f"{rounds} events; POST → each socket's kernel receive time; "
            + read_by_client(floor_read),
        ),
        Row(
            f"fan-out of one event to {subscribers:,} subscribers",
            ms(got.p50),
            ms(got.p99),
            ratio(got.p99, floor.p99),
            "value = p99 ratio to the floor; target p99 ≤ 20 ms; " + read_by_client(got_read),
        ),
        Row(
            "floor: bare FastAPI idle WebSocket RSS",
            value=f"{(bare_idle - bare_before) / subscribers / 1024:,.1f} KiB",
            details=f"{subscribers:,} sockets of the broadcast app: {mib(bare_before)} → "
            f"{mib(bare_idle)}",
        ),
        Row(
            "idle event socket RSS",
            value=f"{(idle - before) / subscribers / 1024:,.1f} KiB",
            details=f"{subscribers:,} sockets: {mib(before)} → {mib(idle)}; after closing "
            f"{mib(after)}; {(idle - before) / max(bare_idle - bare_before, 1):.2f}x the "
            "floor; target ≤ 16 KiB",
        ),
    ]
    return rows


def latency_row(label: str, measured: Latencies, details: str) -> Row:
    """`measured` at p50 and at p99, its sample count leading `details`."""
    return Row(
        label,
        ms(measured.p50),
        ms(measured.p99),
        details=f"n={len(measured.samples)}; {details}",
    )


def overhead_row(label: str, measured: Latencies, floor: Latencies, details: str) -> Row:
    """`measured` less its `floor`, at p50 and at p99, valued as the p50 ratio to the floor."""
    return Row(
        label,
        ms(measured.p50 - floor.p50),
        ms(measured.p99 - floor.p99),
        ratio(measured.p50, floor.p50),
        details,
    )


def percentile_ms(samples: list[float], pct: int) -> str:
    return ms(percentile(samples, pct))
