"""Provider errors: every vendor's failures translated once into one typed tree.

    ProviderError (UpstreamFailure)            retryable?
    ├── AuthenticationFailed   401             no
    ├── PermissionDenied       403             no
    ├── InvalidRequest         400/413/422     no
    ├── ModelNotFound          404             no
    ├── RequestConflict        409             yes
    ├── RateLimited            429             yes (honours the server's wait hint)
    ├── QuotaExhausted         429/402 quota   no  (OpenAI insufficient_quota, billing)
    ├── Overloaded             529, 503        yes
    ├── ServerError            5xx             yes
    ├── ProviderTimeout        read/408/504    yes
    ├── ConnectionFailed       connect/reset   yes
    └── MalformedResponse      unparseable     yes (the next answer may be whole)

Each carries the provider name, HTTP status and the vendor's request id when known, so a
user can quote it to the vendor. None of them is an HTTP answer of this service (that is
app.core.errors.AppError): a provider error ends up as a task's typed `error`, its message
redacted (`TaskError`).
"""

from __future__ import annotations

import email.utils
import time

from app.resilience.errors import UpstreamFailure


class ProviderError(UpstreamFailure):
    reason_label = "error"
    retryable_default = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(
            message,
            retryable=self.retryable_default if retryable is None else retryable,
            reason=self.reason_label,
            retry_after_s=retry_after_s,
        )
        self.provider = provider
        self.status = status
        self.request_id = request_id

    def describe(self) -> dict[str, object]:
        return {
            "type": self.reason_label,
            "message": self.message,
            "provider": self.provider,
            "status": self.status,
            "request_id": self.request_id,
            "retryable": self.retryable,
        }


class AuthenticationFailed(ProviderError):
    reason_label = "authentication"


class PermissionDenied(ProviderError):
    reason_label = "permission"


class InvalidRequest(ProviderError):
    reason_label = "bad_request"


class ModelNotFound(ProviderError):
    reason_label = "not_found"


class RequestConflict(ProviderError):
    reason_label = "conflict"
    retryable_default = True


class RateLimited(ProviderError):
    reason_label = "rate_limited"
    retryable_default = True


class QuotaExhausted(ProviderError):
    reason_label = "quota_exhausted"


class Overloaded(ProviderError):
    reason_label = "overloaded"
    retryable_default = True


class ServerError(ProviderError):
    reason_label = "server_error"
    retryable_default = True


class ProviderTimeout(ProviderError):
    reason_label = "timeout"
    retryable_default = True


class ConnectionFailed(ProviderError):
    reason_label = "connection"
    retryable_default = True


class MalformedResponse(ProviderError):
    reason_label = "malformed_response"
    retryable_default = True


class NotConfigured(ProviderError):
    reason_label = "not_configured"


def unexpected_shape(
    provider: str, exc: Exception, request_id: str | None = None
) -> MalformedResponse:
    """A 2xx body that parsed as JSON but not into the protocol's shape."""
    return MalformedResponse(
        f"{provider}: unexpected response shape ({exc!r})", provider=provider, request_id=request_id
    )


def parse_retry_after(headers: dict[str, str] | object, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def error_for_status(status: int, *, code: str | None = None) -> type[ProviderError]:
    """The error class for an HTTP status (and the vendor's error code, where it matters)."""
    if code in {"insufficient_quota", "billing_error", "billing_hard_limit_reached"}:
        return QuotaExhausted
    table: dict[int, type[ProviderError]] = {
        400: InvalidRequest,
        401: AuthenticationFailed,
        402: QuotaExhausted,
        403: PermissionDenied,
        404: ModelNotFound,
        408: ProviderTimeout,
        409: RequestConflict,
        413: InvalidRequest,
        422: InvalidRequest,
        429: RateLimited,
        503: Overloaded,
        504: ProviderTimeout,
        529: Overloaded,
    }
    if status in table:
        return table[status]
    if status >= 500:
        return ServerError
    return InvalidRequest
