"""Gemini (google.rpc.Status) errors mapped onto the provider error tree.

Body: `{"error": {"code", "message", "status", "details": [...]}}` (sometimes wrapped in a
one-element list). The retry hint lives in the body, not a header: a `google.rpc.RetryInfo`
detail's `retryDelay` ("36s", "1.5s"), else "Please retry in 55.5s." in the message.

RESOURCE_EXHAUSTED (429) is a rate limit unless it cannot pass by waiting: a per-day quota
(`QuotaFailure` quotaId containing "PerDay"), a zero limit ("limit: 0"), or a billing message
("check your plan and billing") with no retry hint. Gemini puts that billing sentence on
per-minute free-tier throttles too, next to a RetryInfo, so the sentence alone is not enough.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.providers import errors as pe
from app.providers.http import json_or_none

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"

_BY_STATUS: dict[str, type[pe.ProviderError]] = {
    "INVALID_ARGUMENT": pe.InvalidRequest,
    "FAILED_PRECONDITION": pe.InvalidRequest,
    "OUT_OF_RANGE": pe.InvalidRequest,
    "UNAUTHENTICATED": pe.AuthenticationFailed,
    "PERMISSION_DENIED": pe.PermissionDenied,
    "NOT_FOUND": pe.ModelNotFound,
    "ABORTED": pe.RequestConflict,
    "RESOURCE_EXHAUSTED": pe.RateLimited,
    "INTERNAL": pe.ServerError,
    "UNKNOWN": pe.ServerError,
    "UNAVAILABLE": pe.Overloaded,
    "DEADLINE_EXCEEDED": pe.ProviderTimeout,
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_RETRY_IN_MESSAGE = re.compile(r"retry in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_BAD_KEY = re.compile(r"api key (?:not valid|not found|expired|is invalid|invalid)", re.I)


def parse_duration(value: object) -> float | None:
    """Seconds from a protobuf JSON Duration ("36s", "1.5s"); None if it is not one."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def _details(err: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    details = err.get("details") or []
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping) and d.get("@type") == kind]


def retry_delay(err: Mapping[str, Any]) -> float | None:
    for detail in _details(err, _RETRY_INFO):
        delay = parse_duration(detail.get("retryDelay"))
        if delay is not None:
            return delay
    match = _RETRY_IN_MESSAGE.search(str(err.get("message") or ""))
    return float(match.group(1)) if match else None


def _bad_key(err: Mapping[str, Any], message: str) -> bool:
    reasons = {str(d.get("reason")) for d in _details(err, _ERROR_INFO)}
    return "API_KEY_INVALID" in reasons or bool(_BAD_KEY.search(message))


def _quota_gone(err: Mapping[str, Any], message: str, delay: float | None) -> bool:
    quota_ids = [
        str(v.get("quotaId") or "")
        for d in _details(err, _QUOTA_FAILURE)
        for v in (d.get("violations") or [])
        if isinstance(v, Mapping)
    ]
    if any("PerDay" in q for q in quota_ids) or "limit: 0" in message:
        return True
    return delay is None and "billing" in message.lower()


def error_object(body: Any) -> Mapping[str, Any]:
    """The `error` object of a body, or {} when there is none."""
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error") if isinstance(body, Mapping) else None
    return err if isinstance(err, Mapping) else {}


def error_from_body(
    provider: str,
    status: int | None,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    fallback_text: str = "",
) -> pe.ProviderError:
    """Map a google.rpc.Status body; `status=None` (an error inside a 200 stream) uses its code."""
    err = error_object(body)
    rpc_status = str(err.get("status") or "")
    message = str(err.get("message") or fallback_text[:500] or rpc_status or "unknown error")
    if status is None:
        code = err.get("code")
        status = code if isinstance(code, int) and code >= 400 else 500
    cls = _BY_STATUS.get(rpc_status) or pe.error_for_status(status)
    delay = retry_delay(err)
    if delay is None and headers is not None:
        delay = pe.parse_retry_after(headers)
    if cls in (pe.InvalidRequest, pe.AuthenticationFailed) and _bad_key(err, message):
        cls = pe.AuthenticationFailed
    elif cls is pe.RateLimited and _quota_gone(err, message, delay):
        cls = pe.QuotaExhausted
    label = f" {rpc_status}" if rpc_status else ""
    return cls(
        f"{provider} HTTP {status}{label}: {message}",
        provider=provider,
        status=status,
        request_id=headers.get("x-request-id") if headers is not None else None,
        retry_after_s=delay,
    )


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], text: str
) -> pe.ProviderError:
    body = json_or_none(text)
    return error_from_body(provider, status, body, headers=headers, fallback_text=text)
