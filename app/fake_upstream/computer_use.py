"""Computer use in the fake Gemini: check and record what the browser sends, play a default
script, serve a demo page.

A request is a computer-use request when its `tools` hold `computerUse`. Then:

- every `functionResponse` in its last turn must carry `response.url` (a string) and an
  `inlineData` part with a PNG (`image/png`, base64 of a real PNG); otherwise the fake
  answers 400 INVALID_ARGUMENT, as a strict upstream would. Each checked response is
  recorded (`GET /_fake/computer-use`): call name and id, url, PNG size and sha256,
  `error`, `safety_acknowledgement`;
- with nothing scripted for the model, the default script plays the README's try-it:
  `navigate` to the demo page `/_fake/demo` of this same server, `click_at` its button
  (grid 500, 450: the button's centre on any screen size), then answer with the incident
  number the page shows. The fake cannot see screenshots: it reads that value from the URL
  the browser reports, which the button's script changed — proof the click ran.
Scripted steps (`tool_calls` named `click_at`, `navigate`, ... with grid coordinates, or
`finish_reason: MALFORMED_FUNCTION_CALL`) work as for any model.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import secrets
import struct
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel

from app.fake_upstream.dialect import as_dict, as_list
from app.fake_upstream.script import Step, ToolCallSpec

DEMO_PATH = "/_fake/demo"
DEMO_BUTTON = {"x": 500, "y": 450}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INCIDENT = re.compile(r"INC-\d{4}")


class ScreenRecord(BaseModel):
    """One function response a computer-use request carried."""

    model: str
    call_id: str | None
    name: str
    url: str
    png_bytes: int
    width: int
    height: int
    sha256: str
    error: str | None = None
    safety_acknowledgement: bool = False
    received_at: float


def is_computer_use(body: Any) -> bool:
    return any("computerUse" in as_dict(tool) for tool in as_list(as_dict(body).get("tools")))


def _last_responses(body: Any) -> list[dict[str, Any]]:
    contents = [as_dict(c) for c in as_list(as_dict(body).get("contents"))]
    if not contents:
        return []
    parts = [as_dict(p) for p in as_list(contents[-1].get("parts"))]
    return [as_dict(p["functionResponse"]) for p in parts if "functionResponse" in p]


def _png(response: dict[str, Any]) -> bytes:
    for part in as_list(response.get("parts")):
        inline = as_dict(as_dict(part).get("inlineData"))
        if inline.get("mimeType") != "image/png":
            continue
        try:
            data = base64.b64decode(str(inline.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("its inlineData is not base64") from None
        if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
            raise ValueError("its inlineData is not a PNG image")
        return data
    raise ValueError("it has no inlineData part with an image/png screenshot")


def check(body: Any, model: str) -> tuple[list[ScreenRecord], str | None]:
    """The last turn's function responses as records, or the first problem found."""
    records = []
    for response in _last_responses(body):
        name = str(response.get("name") or "")
        result = as_dict(response.get("response"))
        url = result.get("url")
        if not isinstance(url, str):
            return [], f"function response for {name!r} has no string response.url"
        try:
            png = _png(response)
        except ValueError as exc:
            return [], f"function response for {name!r}: {exc}"
        width, height = struct.unpack(">II", png[16:24])
        error = result.get("error")
        records.append(
            ScreenRecord(
                model=model,
                call_id=str(response["id"]) if response.get("id") else None,
                name=name,
                url=url,
                png_bytes=len(png),
                width=width,
                height=height,
                sha256=hashlib.sha256(png).hexdigest(),
                error=str(error) if error is not None else None,
                safety_acknowledgement=result.get("safety_acknowledgement") == "true",
                received_at=time.time(),
            )
        )
    return records, None


def default_step(body: Any, base_url: str) -> Step:
    """The try-it script: navigate to the demo page, click its button, report the value."""
    responses = _last_responses(body)
    if not responses:
        url = base_url.rstrip("/") + DEMO_PATH
        return Step(tool_calls=[ToolCallSpec(name="navigate", arguments={"url": url})])
    last = as_dict(responses[-1].get("response"))
    url = str(last.get("url") or "")
    if last.get("error"):
        return Step(text=f"I could not finish: the browser answered {last['error']}")
    parts = urlsplit(url)
    if parts.path != DEMO_PATH:
        return Step(text=f"The browser is at {url}, not on the demo page.")
    incident = parse_qs(parts.query).get("incident")
    if not incident:
        return Step(tool_calls=[ToolCallSpec(name="click_at", arguments=dict(DEMO_BUTTON))])
    return Step(
        text=f"The demo status page says the payments service is down "
        f"(incident {incident[0]}; seen at {url})."
    )


def demo_page(details: bool, incident: str | None) -> str:
    """A small status page; its button sits around grid (500, 450) on any screen."""
    code = incident if incident and INCIDENT.fullmatch(incident) else None
    code = code or f"INC-{secrets.randbelow(9000) + 1000}"
    rows = (
        "<li>api: up</li><li>payments: <b>down</b> (incident "
        f"<span id=incident>{html.escape(code)}</span>)</li><li>search: up</li>"
        if details
        else "<li>3 services monitored</li>"
    )
    target = f"{DEMO_PATH}?details=1&incident={code}"
    return f"""<!doctype html>
<html><head><meta charset=utf-8><title>Big Three demo status</title><style>
body {{ margin: 0; font: 22px sans-serif; background: #f6f7f9; }}
h1 {{ position: absolute; left: 5%; top: 3%; margin: 0; font-size: 34px; }}
ul {{ position: absolute; left: 5%; top: 15%; margin: 0; }}
#details {{ position: absolute; left: 35%; width: 30%; top: 40%; height: 10%;
           font-size: 26px; background: #2962ff; color: #fff; border: 0; }}
</style></head><body>
<h1>Big Three demo status</h1><ul>{rows}</ul>
<button id=details onclick="location.href='{target}'">Show details</button>
</body></html>"""
