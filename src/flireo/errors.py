"""The short error hierarchy used everywhere; mapped once to HTTP (api/errors.py)
and to SIP responses (telephony)."""

from __future__ import annotations


class FlireoError(Exception):
    """Base class. ``code`` is the machine-readable error code of the API."""

    status = 400
    code = "invalid_request"
    type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(FlireoError):
    status = 400
    code = "invalid_request"


class Unauthorized(FlireoError):
    status = 401
    code = "unauthorized"
    type = "authentication_error"


class PaymentRequired(FlireoError):
    status = 402
    code = "insufficient_credits"
    type = "billing_error"


class NotFound(FlireoError):
    status = 404
    code = "not_found"
    type = "not_found_error"


class Conflict(FlireoError):
    status = 409
    code = "conflict"
    type = "conflict_error"


class PayloadTooLarge(FlireoError):
    status = 413
    code = "payload_too_large"


class Unprocessable(FlireoError):
    status = 422
    code = "unprocessable_entity"


class RateLimited(FlireoError):
    status = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(FlireoError):
    """A vendor or external service failed (mapped to 502/504)."""

    status = 502
    code = "upstream_error"
    type = "api_error"


class ProviderError(Exception):
    """A speech/LLM vendor call failed.

    ``status`` is the vendor's HTTP status when there was one; ``retryable``
    tells the caller whether trying again can help (429, 5xx, timeouts);
    ``retry_after`` is the wait in seconds the vendor asked for (its
    ``Retry-After`` header), None when it named none.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class MissingCredentials(ProviderError):
    """No API key for a vendor: neither a BYOK key nor a platform key."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, "no API key configured (BYOK or platform)", retryable=False)


class SipError(Exception):
    """A SIP-level failure that maps to a SIP final response code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason
