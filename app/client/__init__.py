"""A typed Python client for a running Big Three service (used by the `bigthree` CLI and the
tests; usable on its own):

    from app.client import BigThreeClient, NotFound

    with BigThreeClient() as bt:                 # BIGTHREE_URL, BIGTHREE_API_KEY
        bt.create_agent("helper", model="gpt-4o-mini")
        task = bt.submit("helper", "hello", wait_s=30)
        for event in bt.task_events(task.id):    # Server-Sent Events, ends with the task
            print(event.type)

Errors are the server's own types (`app.core.error_types`: NotFound, Conflict,
InvalidInput, TooManyRequests, ServiceUnavailable, Draining, ...), rebuilt from the error
body; a server that cannot be reached raises `Unreachable`. Importing the client imports
neither FastAPI nor the server's settings.
"""

from app.client.client import DEFAULT_URL, BigThreeClient
from app.client.errors import Unreachable, error_from_response
from app.client.models import BreakerStatus, ProviderStatus
from app.core.error_types import (
    AppError,
    BadRequest,
    Conflict,
    Draining,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

__all__ = [
    "DEFAULT_URL",
    "AppError",
    "BadRequest",
    "BigThreeClient",
    "BreakerStatus",
    "Conflict",
    "Draining",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "ProviderStatus",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "Unreachable",
    "error_from_response",
]
