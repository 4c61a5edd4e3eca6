"""The Python client's event stream resumes across a server restart without loss or repeats."""

from __future__ import annotations

from pathlib import Path

from app.client import BigThreeClient
from tests.conftest import provider_env, unique
from tests.support.procs import Proc, start_service


def test_stream_events_resumes_after_a_restart(tmp_path: Path, fake_upstream: Proc) -> None:
    """`stream_events` reconnects with after_seq after the server restarts: the events it
    yields are exactly the stored ones, in order."""
    env, data = provider_env(fake_upstream.url), tmp_path / "data"
    service = start_service(tmp_path, env=env, data_dir=data)
    name = unique("resume")
    try:
        with BigThreeClient(service.url) as bt:
            bt.create_agent(name, model="gpt-4o-mini")
            stream = bt.stream_events(agent=name, reconnect_s=0.1)
            assert bt.submit(name, "before", wait_s=10).state == "succeeded"
            got = [next(stream)]
            while got[-1].type != "task.succeeded":
                got.append(next(stream))
            port = int(service.url.rsplit(":", 1)[1])
            service.stop()
            service = start_service(tmp_path, env=env, data_dir=data, port=port)
            assert bt.submit(name, "after", wait_s=10).state == "succeeded"
            got.append(next(stream))
            while got[-1].type != "task.succeeded":
                got.append(next(stream))
            stream.close()
            stored = bt.events(agent=name, limit=1000).events
        assert [e.seq for e in got] == [e.seq for e in stored]
        assert [e.type for e in got].count("task.succeeded") == 2
    finally:
        service.stop()
