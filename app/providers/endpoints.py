"""Provider routes: what is configured, breaker and bulkhead state, and breaker control.

Breakers are per replica: `GET /v1/providers` shows the breakers of the replica that answers
(named in `replica`); a breaker command is applied on every replica (`BreakerControl`).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from app.core.deps import AuthDep
from app.core.errors import NotFound
from app.core.names import MODEL_PATTERN
from app.core.openapi import problems
from app.providers.deps import BreakerControlDep, GatewayDep
from app.providers.gateway import BreakerAction

router = APIRouter(
    prefix="/v1", dependencies=[AuthDep], tags=["providers"], responses=problems(401)
)

ProviderName = Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_-]+$")]


class BreakerCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    action: BreakerAction = Field(
        description="reset: closed, window cleared; force_open: reject every call; "
        "disable: let every call through. force_open/disable hold until reset. "
        "Applied on every replica."
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=MODEL_PATTERN,
        description="only with per-model breakers",
    )


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value  # type: ignore[arg-type]


@router.get("/providers")
async def list_providers(gateway: GatewayDep, control: BreakerControlDep) -> dict[str, Any]:
    providers = []
    for entry in gateway.status():
        entry["breakers"] = [_plain(b) for b in entry["breakers"]]
        entry["retry_budget"] = _plain(entry["retry_budget"])
        providers.append(entry)
    return {"replica": control.replica_id, "providers": providers}


@router.post("/providers/{name}/breaker", responses=problems(400, 404, 413, 422))
async def control_breaker(
    name: ProviderName, command: BreakerCommand, gateway: GatewayDep, control: BreakerControlDep
) -> dict[str, Any]:
    if name not in gateway.providers:
        raise NotFound(f"no provider named {name!r}", known=gateway.names)
    changed = await control.act(name, command.action, command.model)
    return {"replica": control.replica_id, "breakers": [_plain(b.snapshot()) for b in changed]}
