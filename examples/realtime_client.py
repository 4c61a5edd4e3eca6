"""A tiny text client for Big Three's realtime orchestrator (`WS /v1/realtime`).

    .venv/bin/python examples/realtime_client.py                  # ws://127.0.0.1:8000
    BIGTHREE_API_KEY=... .venv/bin/python examples/realtime_client.py --url wss://host/v1/realtime

Type a line to talk to the orchestrator; `/cancel` interrupts its answer, `/quit` ends the
session. With `--modality audio`, the model's speech (PCM16, 24 kHz mono) is appended to
`--audio-out` (play it with e.g. `ffplay -f s16le -ar 24000 -ac 1 reply.pcm`) and its
transcript is printed. The protocol is described in docs/realtime.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


def show(frame: dict[str, Any], audio_out: Path | None) -> None:
    kind = frame["type"]
    if kind in ("text.delta", "transcript.delta"):
        print(frame["delta"], end="", flush=True)
    elif kind == "audio.delta" and audio_out is not None:
        with audio_out.open("ab") as out:
            out.write(base64.b64decode(frame["audio"]))
    elif kind == "response.done":
        print(
            f"\n  [{frame['status']}, ${frame['cost_usd']:.5f}, "
            f"session ${frame['session_cost_usd']:.5f}]"
        )
    elif kind == "session":
        print(
            f"session {frame['session_id']} on {frame['model']}, tools: {', '.join(frame['tools'])}"
        )
    elif kind == "tool_call.started":
        print(f"\n  -> {frame['name']}({json.dumps(frame['arguments'])})")
    elif kind == "tool_call.finished":
        print(f"  <- {frame['name']}: {frame['output'].splitlines()[0]}")
    elif kind == "task.finished":
        print(
            f"\n  task {frame['task_id']} ({frame['agent']}) {frame['state']}: "
            f"{frame['result'] or frame['error']}"
        )
    elif kind == "error":
        print(f"\n  error ({frame['source']}): {frame['error']['message']}")


async def receive(ws: ClientConnection, audio_out: Path | None) -> None:
    try:
        async for message in ws:
            show(json.loads(message), audio_out)
    except ConnectionClosed:
        pass
    if ws.close_code is not None:
        print(f"\nclosed: {ws.close_code} {ws.close_reason}")


async def send_lines(ws: ClientConnection) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "/quit":
            await ws.send(json.dumps({"type": "close"}))
            return
        if line.strip() == "/cancel":
            await ws.send(json.dumps({"type": "cancel"}))
        elif line.strip():
            await ws.send(json.dumps({"type": "input_text", "text": line.strip()}))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/realtime")
    parser.add_argument("--modality", choices=["text", "audio"], default="text")
    parser.add_argument("--audio-out", type=Path, default=None)
    args = parser.parse_args()
    key = os.environ.get("BIGTHREE_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else None
    url = f"{args.url}?modality={args.modality}"
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        receiver = asyncio.create_task(receive(ws, args.audio_out))
        await send_lines(ws)
        await receiver


if __name__ == "__main__":
    asyncio.run(main())
