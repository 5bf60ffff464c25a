"""The hub's exception tree; one middleware maps it to HTTP.

HubError                  base; `status` and `code` say how it reaches a client
├── ConfigError           settings missing, unknown or malformed (start-up only)
├── AuthError             missing or wrong credentials                    401
│   └── SignatureError    a webhook's signature does not verify           401
├── ForbiddenError        authenticated, but the role may not do this     403
├── NotFoundError         no such object (or a provider that is disabled) 404
│   └── GoneError         a merged-away card; carries `merged_into`       410
├── ConflictError         the change clashes with stored data             409
├── PayloadError          malformed request body or query                 400
├── ValidationError       well-formed but invalid                         422
├── TooLargeError         body over the configured limit                  413
├── MediaTypeError        wrong Content-Type                              415
├── DeliveryError         an outbound send failed; `retryable` says whether to try again  502
└── BusyError             the database stayed locked; the caller should retry soon         503
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    status = 500
    code = "internal_error"
    headers: dict[str, str] = {}  # e.g. Retry-After on 503

    def __init__(self, message: str = "", **extra: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.extra = extra


class ConfigError(HubError):
    code = "config_error"


class AuthError(HubError):
    status = 401
    code = "unauthorized"


class SignatureError(AuthError):
    code = "bad_signature"


class ForbiddenError(HubError):
    status = 403
    code = "forbidden"


class NotFoundError(HubError):
    status = 404
    code = "not_found"


class GoneError(NotFoundError):
    status = 410
    code = "merged"


class ConflictError(HubError):
    status = 409
    code = "conflict"


class PayloadError(HubError):
    status = 400
    code = "malformed"


class ValidationError(HubError):
    status = 422
    code = "invalid"


class TooLargeError(HubError):
    status = 413
    code = "too_large"


class MediaTypeError(HubError):
    status = 415
    code = "unsupported_media_type"


class BusyError(HubError):
    status = 503
    code = "busy"
    headers = {"Retry-After": "1"}  # providers and clients retry; tell them when


class RateLimitError(HubError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(int(retry_after), 1))}


class DeliveryError(HubError):
    status = 502
    code = "delivery_failed"

    def __init__(self, message: str, *, retryable: bool, provider_code: str | None = None) -> None:
        super().__init__(message, retryable=retryable, provider_code=provider_code)
        self.retryable = retryable
        self.provider_code = provider_code
