"""One error hierarchy for the whole product; the API and CLI map these to 4xx/exit codes."""

from __future__ import annotations

from typing import Any


class IdrError(Exception):
    """Base class. ``status`` is the HTTP status the API answers with."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class ConfigError(IdrError):
    """Bad configuration (YAML or API); names the offending field."""

    status = 422
    code = "invalid_config"

    def __init__(self, message: str, *, field: str | None = None, errors: list[dict[str, str]] | None = None):
        super().__init__(message, field=field, details=errors)
        self.errors = errors or ([{"field": field, "message": message}] if field else [])


class NotFoundError(IdrError):
    status = 404
    code = "not_found"


class ConflictError(IdrError):
    status = 409
    code = "conflict"


class PreconditionFailedError(IdrError):
    """If-Match names a version of a resource that is no longer current (optimistic concurrency)."""

    status = 412
    code = "precondition_failed"


class LimitExceededError(IdrError):
    """A request would exceed a configured bound (names the setting that sets it)."""

    status = 422
    code = "limit_exceeded"


class PipelineError(IdrError):
    """A run failed in a stage; production tables are untouched."""

    status = 500
    code = "pipeline_failed"

    def __init__(self, message: str, *, stage: str | None = None):
        super().__init__(message)
        self.stage = stage


class ComponentCapExceeded(PipelineError):
    """The component loop hit ``max_cc_rounds``: fail rather than return a wrong partition."""


class UnauthorizedError(IdrError):
    """No or unknown API key."""

    status = 401
    code = "unauthorized"


class ForbiddenError(IdrError):
    """The API key lacks the scope an operation needs."""

    status = 403
    code = "forbidden"


class UnavailableError(IdrError):
    """A dependency is busy or down (e.g. another process holds the DuckDB file); retry later."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
