"""Browser screenshots across replicas: two real `bigthree serve` on one PostgreSQL and
Redis run a real browser task (headless Chromium, the fake Gemini computer-use upstream);
with one shared BIGTHREE_ARTIFACTS_DIR every replica serves its PNGs, without it only the
replica that ran the task does and the other answers a clear 404."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.integration.test_browser_agent import SCREEN, cu, new_browser
from tests.support.api import submit, wait_task
from tests.support.browser import Site, png_image, require_chromium, serve_site
from tests.support.cluster import Cluster, running_cluster

PAGE = "<!doctype html><title>Shared</title><p style='font-size: 40px'>across replicas</p>"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    require_chromium()
    with serve_site({"/": PAGE}) as served:
        yield served


def run_browser_task(cluster: Cluster, site: Site) -> tuple[str, list[dict[str, Any]]]:
    """A browser task (look once, then answer) submitted to the first replica; its id and
    its artifacts as every replica lists them (the rows are shared)."""
    with httpx.Client(base_url=cluster.replicas[0].url, timeout=30) as http:
        name, model = new_browser(http, site)
        FakeUpstreamClient(cluster.fake.url).script(
            model, [{"tool_calls": [cu("c0", "open_web_browser")]}, {"text": "Seen it."}]
        )
        task = wait_task(http, submit(http, name, "look at the page")["id"], timeout=60)
    assert task["state"] == "succeeded", task
    listings = [
        httpx.get(f"{proc.url}/v1/tasks/{task['id']}/artifacts", timeout=30).json()["artifacts"]
        for proc in cluster.replicas
    ]
    assert all(listing == listings[0] for listing in listings)
    assert [a["kind"] for a in listings[0]] == ["screenshot", "final"]
    return task["id"], listings[0]


def image_from_each_replica(
    cluster: Cluster, task_id: str, artifact_id: str
) -> list[httpx.Response]:
    return [
        httpx.get(f"{proc.url}/v1/tasks/{task_id}/artifacts/{artifact_id}", timeout=30)
        for proc in cluster.replicas
    ]


@pytest.mark.timeout(240)
def test_replicas_sharing_an_artifacts_dir_serve_each_others_screenshots(
    tmp_path: Path, site: Site
) -> None:
    """Whichever replica ran the task, both answer each image: the same PNG bytes, of the
    screen's size, whose sha256 is the listed one."""
    shared = tmp_path / "shared-artifacts"
    with running_cluster(tmp_path, 2, env={"BIGTHREE_ARTIFACTS_DIR": str(shared)}) as cluster:
        task_id, artifacts = run_browser_task(cluster, site)
        for artifact in artifacts:
            responses = image_from_each_replica(cluster, task_id, artifact["id"])
            for response in responses:
                assert response.status_code == 200, response.text
                assert response.headers["content-type"] == "image/png"
                assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
                assert png_image(response.content).size == (SCREEN["width"], SCREEN["height"])
        # the files are in the shared directory, not under either replica's data dir
        assert sorted(p.stem for p in (shared / task_id).iterdir()) == sorted(
            a["id"] for a in artifacts
        )
        assert not list(tmp_path.glob("replica-*/artifacts/*"))


@pytest.mark.timeout(240)
def test_without_a_shared_dir_the_other_replica_answers_not_on_this_replica(
    tmp_path: Path, site: Site
) -> None:
    """Each replica keeps screenshots under its own data dir: the one that ran the task
    serves them, the other answers 404 not_found `not_on_this_replica`, naming the setting."""
    with running_cluster(tmp_path, 2) as cluster:
        task_id, artifacts = run_browser_task(cluster, site)
        for artifact in artifacts:
            responses = image_from_each_replica(cluster, task_id, artifact["id"])
            served = [r for r in responses if r.status_code == 200]
            refused = [r for r in responses if r.status_code != 200]
            assert len(served) == 1 and len(refused) == 1, [r.status_code for r in responses]
            assert hashlib.sha256(served[0].content).hexdigest() == artifact["sha256"]
            assert refused[0].status_code == 404
            error = refused[0].json()["error"]
            assert (error["type"], error["reason"]) == ("not_found", "not_on_this_replica")
            assert "BIGTHREE_ARTIFACTS_DIR" in error["message"]
