"""Service metrics (HTTP, runs, webhook deliveries) beside the warehouse collector."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.vocabulary import RUN_STATUSES
from app.db.models import MetricsExportFailure, MetricsSnapshot, Run, WebhookAttempt
from app.services.runtime import Runtime

log = logging.getLogger(__name__)


class StateCollector(Collector):
    """Read from the state DB at scrape time, so it is right whichever process did the work."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("idr_service_runs", "Runs known to the service, by status.", labels=["status"])
        deliveries = CounterMetricFamily(
            "idr_webhook_delivery_attempts", "Webhook delivery attempts, by outcome.", labels=["outcome"]
        )
        export_failures = CounterMetricFamily(
            "idr_metrics_export_failures",
            "Failed pushes to a metrics exporter (its rows stay pending for the next push), by provider.",
            labels=["provider"],
        )
        try:
            with self.rt.session() as s:
                by_status = dict(s.execute(select(Run.status, func.count()).group_by(Run.status)).all())
                by_outcome = dict(
                    s.execute(select(WebhookAttempt.outcome, func.count()).group_by(WebhookAttempt.outcome)).all()
                )
                by_provider = dict(
                    s.execute(
                        select(MetricsExportFailure.provider, func.count()).group_by(MetricsExportFailure.provider)
                    ).all()
                )
        except Exception:  # a scrape must answer
            log.exception("reading the state DB for metrics failed")
            return
        for status in RUN_STATUSES:
            runs.add_metric([status], float(by_status.get(status, 0)))
        for outcome in ("success", "retry", "failed"):
            deliveries.add_metric([outcome], float(by_outcome.get(outcome, 0)))
        configured = [n.strip() for n in self.rt.settings.metrics_push_exporters.split(",") if n.strip()]
        for provider in sorted(set(configured) | set(by_provider)):
            export_failures.add_metric([provider], float(by_provider.get(provider, 0)))
        yield runs
        yield deliveries
        yield export_failures


class StateSnapshotStore:
    """Keeps a target's last warehouse metrics in the state DB (IdrCollector's store): an
    API started while a worker holds the DuckDB file still serves them."""

    def __init__(self, rt: Runtime, target: str) -> None:
        self.rt, self.target = rt, target

    def save(self, body: bytes, read_at: float) -> None:
        at = datetime.fromtimestamp(read_at, UTC)
        with self.rt.session() as s:
            row = s.get(MetricsSnapshot, self.target)
            if row is None:
                s.add(MetricsSnapshot(target=self.target, body=body.decode(), read_at=at))
            else:
                row.body, row.read_at = body.decode(), at

    def load(self) -> tuple[bytes, float] | None:
        with self.rt.session() as s:
            row = s.get(MetricsSnapshot, self.target)
            if row is None:
                return None
            at = row.read_at if row.read_at.tzinfo else row.read_at.replace(tzinfo=UTC)
            return row.body.encode(), at.timestamp()


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request counts and latency by route template (never by raw path: ids would explode series)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("idr_http_requests", "HTTP requests.", ["method", "route", "status"], registry=registry)
        self.latency = Histogram(
            "idr_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            # Labels come from closed sets only: a client must not create series at will.
            method = scope.get("method", "GET")
            method = method if method in KNOWN_METHODS else "other"
            self.metrics.requests.labels(method, path, str(status["code"])).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - t0)


def render_all(rt: Runtime) -> tuple[bytes, str]:
    """Warehouse families first, then the service's own."""
    parts = []
    for reg in rt.registries:  # type: ignore[attr-defined]
        parts.append(generate_latest(reg))
    return b"".join(parts), CONTENT_TYPE_LATEST
