"""Generic JSON webhook: the design's per-run payload, HMAC-SHA256 signed.

Headers: ``X-IDR-Signature: sha256=<hex HMAC of the exact body>`` and ``Idempotency-Key``
(a hash of the payload's metric ids, identical on every retry and re-attempt, so a
receiver can drop a delivery it already processed after a lost response).
Timeouts, transport errors and 5xx are retried with exponential backoff; 4xx is not
(the request itself is wrong, repeating it cannot help).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from app.core.errors import ConfigError
from app.core.timefmt import rfc3339
from app.metrics.exporters.base import Exporter, MetricRow
from app.metrics.settings import get_metrics_settings
from app.platforms.base import Adapter

SIGNATURE_HEADER = "X-IDR-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookServerError(Exception):
    """A 5xx answer: transient by contract, so retried."""

    def __init__(self, status: int) -> None:
        super().__init__(f"webhook answered HTTP {status}")
        self.status = status


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, WebhookServerError | httpx.TimeoutException | httpx.TransportError)


def build_payload(rows: Sequence[MetricRow], now: datetime | None = None) -> dict[str, Any]:
    """The design's payload for one run, plus each metric's id and type."""
    run_ids = {r.run_id for r in rows}
    if len(run_ids) != 1:
        raise ValueError("a webhook payload carries exactly one run")
    status = next(
        (
            r.dimensions.get("status")
            for r in rows
            if r.metric_name == "idr_run_status" and r.metric_value > 0
        ),
        None,
    )
    return {
        "run_id": rows[0].run_id,
        "timestamp": rfc3339(now or datetime.now(UTC)),
        "status": status,
        "metrics": [
            {
                "metric_id": r.metric_id,
                "name": r.metric_name,
                "value": r.metric_value,
                "type": r.metric_type,
                "dimensions": r.dimensions,
                "recorded_at": rfc3339(r.recorded_at),
            }
            for r in rows
        ],
    }


class WebhookExporter(Exporter):
    name = "webhook"
    per_run = True

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not url:
            raise ConfigError("webhook exporter needs a url", field="webhook_url")
        if not secret:
            raise ConfigError("webhook exporter needs a signing secret", field="webhook_secret")
        self.url = url
        self._secret = secret
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> WebhookExporter:
        s = get_metrics_settings()
        secret = options.get("secret") or (s.webhook_secret.get_secret_value() if s.webhook_secret else "")
        return cls(
            options.get("url") or s.webhook_url or "",
            secret,
            timeout=float(options.get("timeout", s.webhook_timeout_seconds)),
            max_attempts=int(options.get("max_attempts", s.webhook_max_attempts)),
            backoff_seconds=float(options.get("backoff_seconds", s.webhook_backoff_seconds)),
            backoff_max_seconds=float(options.get("backoff_max_seconds", s.webhook_backoff_max_seconds)),
        )

    def export(self, rows: Sequence[MetricRow], adapter: Adapter) -> None:
        # Body built once: every retry sends identical bytes, signature and idempotency key.
        body = json.dumps(build_payload(rows), separators=(",", ":"), sort_keys=True).encode()
        key = hashlib.sha256("\n".join(sorted(r.metric_id for r in rows)).encode()).hexdigest()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            IDEMPOTENCY_HEADER: key,
        }
        for attempt in Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.backoff_max_seconds),
            reraise=True,
        ):
            with attempt:
                resp = self._client.post(self.url, content=body, headers=headers)
                if resp.status_code >= 500:
                    raise WebhookServerError(resp.status_code)
                resp.raise_for_status()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
