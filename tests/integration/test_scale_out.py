"""Scale-out end to end: real `bigthree serve` replicas on one PostgreSQL database and one
Redis, driven over HTTP and WebSocket like a user behind a load balancer would."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.support.api import FINISHED, create_agent, submit, wait_task
from tests.support.cluster import Cluster, Subscriber, running_cluster, stored_events
from tests.support.procs import Proc, wait_until
from tests.support.servers import PrivatePostgres, PrivateRedis

AGENTS = 50
TASKS = 2000
MODEL = "gpt-4o-mini"


def prompts_called(cluster: Cluster, model: str = MODEL) -> Counter[str]:
    """How many provider calls the fake upstream got for each prompt."""
    counts: Counter[str] = Counter()
    response = httpx.get(f"{cluster.fake.url}/_fake/requests", params={"model": model}, timeout=60)
    for request in response.json()["requests"]:
        messages = request["body"]["messages"]
        counts[messages[-1]["content"]] += 1
    return counts


def replica_id(proc: Proc) -> str:
    return str(httpx.get(f"{proc.url}/v1/providers", timeout=5).json()["replica"])


def metric_total(procs: list[Proc], name: str, **labels: str) -> dict[str, float]:
    """The sample `name{labels}` on each replica's /metrics."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = {}
    for proc in procs:
        text = httpx.get(f"{proc.url}/metrics", timeout=5).text
        found[proc.url] = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + "{", name + " ")) and wanted in line
        )
    return found


class Clients(threading.local):
    """One httpx client per thread and replica."""

    def __init__(self, urls: list[str]) -> None:
        self.http = [httpx.Client(base_url=url, timeout=30) for url in urls]


@pytest.mark.timeout(420)
def test_three_replicas_run_every_task_once_in_order_with_one_event_stream(
    tmp_path: Path,
) -> None:
    """2,000 tasks over 50 agents, submitted round-robin to three replicas: every agent is
    visible on every replica, every task succeeds exactly once (the fake upstream counts
    calls per task), each agent's tasks run in submission order, the replicas share the
    work, and a subscriber on each replica sees the same events — the stored log, in seq
    order, without gaps or duplicates."""
    with running_cluster(tmp_path, 3) as cluster:
        urls = [proc.url for proc in cluster.replicas]
        subscribers = [Subscriber(url) for url in urls]
        names = [f"agent-{n:02d}" for n in range(AGENTS)]
        main = [httpx.Client(base_url=url, timeout=30) for url in urls]
        for n, name in enumerate(names):
            create_agent(main[n % 3], name, model=MODEL)
        for http in main:
            listed = http.get("/v1/agents").json()["agents"]
            assert sorted(a["name"] for a in listed) == names

        clients = Clients(urls)
        per_agent = TASKS // AGENTS

        def submit_for(agent: int) -> list[str]:
            """This agent's tasks, one after another, each to the next replica in turn."""
            ids = []
            for k in range(per_agent):
                http = clients.http[(k * AGENTS + agent) % 3]
                response = http.post(
                    f"/v1/agents/{names[agent]}/tasks", json={"prompt": f"t-{agent}-{k}"}
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
            return ids

        with ThreadPoolExecutor(max_workers=25) as pool:
            submitted = list(pool.map(submit_for, range(AGENTS)))
        all_ids = {task_id for ids in submitted for task_id in ids}

        def finished() -> int:
            return sum(1 for e in subscribers[0].events if e["type"] == "task.succeeded")

        wait_until(lambda: finished() >= TASKS, timeout=240, what="every task to succeed")

        # every task succeeded exactly once, each agent's in submission order
        succeeded = [e for e in subscribers[0].events if e["type"] == "task.succeeded"]
        assert sorted(e["task_id"] for e in succeeded) == sorted(all_ids)
        calls = prompts_called(cluster)
        expected = {f"t-{a}-{k}" for a in range(AGENTS) for k in range(per_agent)}
        assert set(calls) == expected and set(calls.values()) == {1}
        order: dict[str, list[str]] = defaultdict(list)
        for event in subscribers[0].events:
            if event["type"] == "task.running":
                order[event["agent"]].append(event["task_id"])
        for agent, ids in zip(names, submitted, strict=True):
            assert order[agent] == ids, agent

        # the work was shared, and every replica reads the same state
        ran = metric_total(cluster.replicas, "bigthree_tasks_total", outcome="succeeded")
        assert sum(ran.values()) == TASKS and all(v > 0 for v in ran.values()), ran
        for http in main:
            agents = {a["name"]: a for a in http.get("/v1/agents").json()["agents"]}
            assert {a["tasks_total"] for a in agents.values()} == {per_agent}
            sample = http.get(f"/v1/tasks/{submitted[7][-1]}").json()
            assert sample["state"] == "succeeded"

        # one event stream: the same on every replica, and exactly the stored log
        stored = stored_events(urls[0])
        wait_until(
            lambda: all(len(s.events) >= len(stored) for s in subscribers),
            timeout=60,
            what="every subscriber to catch up",
        )
        for subscriber in subscribers:
            subscriber.close()
        streams = [s.seqs()[: len(stored)] for s in subscribers]
        assert streams[0] == [e["seq"] for e in stored]
        assert streams[0] == sorted(set(streams[0]))
        assert streams[1] == streams[0] and streams[2] == streams[0]


@pytest.mark.timeout(300)
def test_a_killed_replica_loses_no_task_and_runs_none_twice(tmp_path: Path) -> None:
    """Three replicas under load; one is killed with SIGKILL while running tasks. Its
    running tasks end `interrupted` once their lease runs out (found by a survivor), its
    share of the queue runs on the others, and of every accepted task none is lost and none
    ran twice."""
    env = {"BIGTHREE_TASK_LEASE_S": "3", "BIGTHREE_MAX_CONCURRENT_TASKS": "8"}
    with running_cluster(tmp_path, 3, env=env) as cluster:
        httpx.post(
            f"{cluster.fake.url}/_fake/script",
            json={"model": "slow-model", "steps": [{"latency_s": 0.5, "repeat": -1}]},
            timeout=5,
        ).raise_for_status()
        victim, *survivors = cluster.replicas
        victim_id = replica_id(victim)
        main = [httpx.Client(base_url=p.url, timeout=30) for p in cluster.replicas]
        names = [f"k-{n:02d}" for n in range(24)]
        for n, name in enumerate(names):
            create_agent(main[n % 3], name, model="slow-model")
        watcher = Subscriber(survivors[0].url, type="task.*")
        clients = Clients([p.url for p in cluster.replicas])

        def submit(k: int) -> str:
            response = clients.http[k % 3].post(
                f"/v1/agents/{names[k % len(names)]}/tasks", json={"prompt": f"k-{k}"}
            )
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            accepted = list(pool.map(submit, range(240)))

        def victim_running() -> bool:
            return metric_total([victim], "bigthree_tasks_running")[victim.url] >= 3

        wait_until(victim_running, timeout=30, what="the victim to run tasks")
        victim.popen.kill()
        victim.popen.wait(timeout=10)

        states: dict[str, dict[str, Any]] = {}

        def all_finished() -> bool:
            for task_id in accepted:
                if states.get(task_id, {}).get("state") not in FINISHED:
                    states[task_id] = main[1].get(f"/v1/tasks/{task_id}").json()
            return all(states[t]["state"] in FINISHED for t in accepted)

        wait_until(all_finished, timeout=120, what="every accepted task to finish")
        watcher.close()
        outcomes = Counter(s["state"] for s in states.values())
        assert set(outcomes) <= {"succeeded", "interrupted"}, outcomes
        assert 1 <= outcomes["interrupted"] <= 8, outcomes  # what the victim ran, at most
        # each interrupted task was the victim's (its claim named it), found by a survivor
        lost = {
            e["task_id"]: e["payload"] for e in watcher.events if e["type"] == "task.interrupted"
        }
        for task_id, state in states.items():
            if state["state"] == "interrupted":
                assert lost[task_id]["replica"] == victim_id and lost[task_id]["recovered"]
                assert state["error"]["type"] == "interrupted"
        calls = prompts_called(cluster, "slow-model")
        assert max(calls.values()) == 1  # none ran twice
        succeeded = {states[t]["prompt"] for t in accepted if states[t]["state"] == "succeeded"}
        assert succeeded <= set(calls)


@pytest.mark.timeout(300)
def test_postgres_then_redis_restarted_under_load_lose_nothing(tmp_path: Path) -> None:
    """Two replicas on a private PostgreSQL and Redis, tasks submitted all along. PostgreSQL
    is stopped and started again, then Redis: meanwhile submissions are refused with 503
    (not stored) or accepted; afterwards both replicas are ready again by themselves and
    every accepted task has succeeded, once."""
    postgres, redis = PrivatePostgres(), PrivateRedis()
    try:
        with running_cluster(tmp_path, 2, db_server=postgres.url, redis_url=redis.url) as cluster:
            main = [httpx.Client(base_url=p.url, timeout=30) for p in cluster.replicas]
            names = [f"r-{n}" for n in range(6)]
            for n, name in enumerate(names):
                create_agent(main[n % 2], name, model=MODEL)
            accepted: list[str] = []
            refused = Counter[int]()
            stop = threading.Event()

            def load() -> None:
                clients = [httpx.Client(base_url=p.url, timeout=10) for p in cluster.replicas]
                k = 0
                while not stop.is_set() and k < 3000:
                    try:
                        response = clients[k % 2].post(
                            f"/v1/agents/{names[k % 6]}/tasks", json={"prompt": f"r-{k}"}
                        )
                    except httpx.HTTPError:
                        refused[0] += 1
                    else:
                        if response.status_code == 202:
                            accepted.append(response.json()["id"])
                        else:
                            assert response.status_code in {429, 503}, response.text
                            assert response.headers.get("retry-after")
                            refused[response.status_code] += 1
                    k += 1

            loader = threading.Thread(target=load)
            loader.start()
            try:
                wait_until(lambda: len(accepted) >= 50, what="load to start")
                postgres.stop()
                wait_until(lambda: refused[503] >= 3, what="submissions refused")
                ready = main[0].get("/ready")
                assert ready.status_code == 503
                assert ready.json()["checks"]["postgres"] == "unreachable"
                postgres.start()
                before = len(accepted)
                wait_until(lambda: len(accepted) >= before + 50, timeout=60, what="PostgreSQL back")
                redis.stop()
                wait_until(lambda: main[1].get("/ready").status_code == 503, what="redis seen down")
                redis.start()
                wait_until(
                    lambda: all(m.get("/ready").status_code == 200 for m in main),
                    timeout=60,
                    what="both replicas ready again",
                )
                before = len(accepted)
                wait_until(lambda: len(accepted) >= before + 50, what="load after Redis")
            finally:
                stop.set()
                loader.join(timeout=60)

            def all_succeeded() -> bool:
                states = [main[0].get(f"/v1/tasks/{t}").json()["state"] for t in accepted]
                assert "failed" not in states and "interrupted" not in states
                return all(state == "succeeded" for state in states)

            wait_until(all_succeeded, timeout=120, what="every accepted task to succeed")
            calls = prompts_called(cluster)
            prompts = {main[0].get(f"/v1/tasks/{t}").json()["prompt"] for t in accepted}
            assert all(calls[p] == 1 for p in prompts)
    finally:
        postgres.close()
        redis.close()


@pytest.mark.timeout(180)
def test_every_replica_reports_the_shared_queue_depth(tmp_path: Path) -> None:
    """Two agents each run one task held by a slow provider, with more queued behind them,
    submitted through both replicas: each replica's `bigthree_tasks_queued` is the number of
    tasks queued in the database (not only those it took), and it returns to 0 once they
    have run."""
    with running_cluster(tmp_path, 2) as cluster:
        FakeUpstreamClient(cluster.fake.url).script("held-model", [{"latency_s": 60, "repeat": 2}])
        main = [httpx.Client(base_url=p.url, timeout=30) for p in cluster.replicas]
        names = ["qa", "qb"]
        heads = []
        for http, name in zip(main, names, strict=True):
            create_agent(http, name, model="held-model")
            heads.append(submit(http, name, f"{name}-head")["id"])
        for task_id in heads:
            wait_task(main[0], task_id, {"running"})
        queued = [submit(main[k % 2], names[k % 2], f"q-{k}")["id"] for k in range(5)]

        def depths() -> set[float]:
            return set(metric_total(cluster.replicas, "bigthree_tasks_queued").values())

        wait_until(lambda: depths() == {5.0}, timeout=30, what="both replicas to report 5")
        states = {main[1].get(f"/v1/tasks/{t}").json()["state"] for t in queued}
        assert states == {"queued"}  # the heads still hold their agents' queues

        for task_id in heads:
            assert main[1].post(f"/v1/tasks/{task_id}/cancel").status_code == 200
        for task_id in queued:
            assert wait_task(main[0], task_id, timeout=30)["state"] == "succeeded"
        wait_until(lambda: depths() == {0.0}, timeout=30, what="both replicas to report 0")
