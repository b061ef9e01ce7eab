"""The push-exporter plugin interface and the loop that feeds it unexported rows.

A provider is a class registered under the entry-point group ``idr.metrics_exporters``
(``pyproject.toml``), so a user package can add one without forking::

    [project.entry-points."idr.metrics_exporters"]
    mysink = "mypkg.sink:MySinkExporter"

Bookkeeping is per provider, in ``idr_out.metrics_export_log`` (created idempotently
here): a row is pending for a provider until a log row says that provider exported it.
``metrics_export.exported_at`` is set by the first provider that succeeds, so the
design's ``WHERE exported_at IS NULL`` still means "never exported anywhere".
Rows are marked only after the provider reported success; a failure leaves them pending.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar

from app.core.errors import ConfigError
from app.metrics.recorder import utcnow
from app.platforms.base import Adapter

ENTRY_POINT_GROUP = "idr.metrics_exporters"

EXPORT_LOG_DDL = (
    "CREATE TABLE IF NOT EXISTS idr_out.metrics_export_log ("
    "metric_id VARCHAR NOT NULL, "
    "provider VARCHAR NOT NULL, "
    "batch_id VARCHAR NOT NULL, "
    "exported_at TIMESTAMP NOT NULL, "
    "PRIMARY KEY (metric_id, provider))"
)


@dataclass(frozen=True)
class MetricRow:
    metric_id: str
    run_id: str | None
    metric_name: str
    metric_value: float
    metric_type: str
    dimensions: dict[str, Any]
    recorded_at: datetime


class Exporter(ABC):
    """One push provider. ``export`` raises on failure; returning means delivered."""

    name: ClassVar[str]
    # True: the loop calls export() once per run_id (the webhook's payload is per run).
    per_run: ClassVar[bool] = False
    # Upper bound on rows per export() call (one provider request), None = the loop's batch size.
    max_batch: ClassVar[int | None] = None

    @classmethod
    @abstractmethod
    def from_options(cls, options: Mapping[str, str]) -> Exporter:
        """Build from CLI/API options, falling back to MetricsSettings."""

    @abstractmethod
    def export(self, rows: Sequence[MetricRow], adapter: Adapter) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release clients; called once by export_pending."""


def available_exporters() -> dict[str, Any]:
    """Provider name -> entry point (not loaded: a broken third-party plugin must not break others)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_exporter(name: str, options: Mapping[str, str] | None = None) -> Exporter:
    eps = available_exporters()
    if name not in eps:
        raise ConfigError(
            f"unknown metrics exporter {name!r}; installed: {', '.join(sorted(eps)) or 'none'}",
            field="provider",
        )
    try:
        cls = eps[name].load()
    except ImportError as e:  # an optional client library (e.g. the datadog extra) is missing
        raise ConfigError(
            f"metrics exporter {name!r} needs {e.name or 'a package'} that is not installed "
            f"(pip install 'idr-service[{name}]')",
            field="provider",
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, Exporter)):
        raise ConfigError(f"entry point {name!r} is not an Exporter subclass", field="provider")
    return cls.from_options(dict(options or {}))


@dataclass
class ExportReport:
    provider: str
    exported: int = 0
    batches: int = 0
    error: str | None = None
    run_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def ensure_export_log(adapter: Adapter) -> None:
    for stmt in adapter.translate(EXPORT_LOG_DDL):
        adapter.execute(stmt)


_ALL = object()  # pending_rows(run_id=_ALL): no run filter


def pending_rows(adapter: Adapter, provider: str, *, limit: int, run_id: Any = _ALL) -> list[MetricRow]:
    """Rows this provider has not exported, oldest first (run_id=None selects run-less rows)."""
    params: dict[str, Any] = {"provider": provider, "limit": int(limit)}
    run_filter = ""
    if run_id is None:
        run_filter = "AND m.run_id IS NULL "
    elif run_id is not _ALL:
        run_filter = "AND m.run_id = $run_id "
        params["run_id"] = run_id
    sql = (
        "SELECT m.metric_id, m.run_id, m.metric_name, m.metric_value, m.metric_type, m.dimensions, "
        "m.recorded_at "
        "FROM idr_out.metrics_export m "
        "WHERE m.metric_id IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM idr_out.metrics_export_log l "
        "WHERE l.metric_id = m.metric_id AND l.provider = $provider) "
        + run_filter
        + "ORDER BY m.recorded_at, m.run_id, m.metric_name, m.metric_id LIMIT $limit"
    )
    rows = []
    for mid, rid, name, value, mtype, dims, rec_at in adapter.fetchall(sql, params):
        try:
            parsed = json.loads(dims) if dims else {}
        except ValueError:
            parsed = {"_raw": dims}
        rows.append(MetricRow(mid, rid, name, float(value), mtype or "gauge", parsed, rec_at))
    return rows


def pending_run_ids(adapter: Adapter, provider: str) -> list[str | None]:
    """Runs with rows pending for this provider, oldest first."""
    rows = adapter.fetchall(
        "SELECT m.run_id FROM idr_out.metrics_export m "
        "WHERE m.metric_id IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM idr_out.metrics_export_log l "
        "WHERE l.metric_id = m.metric_id AND l.provider = $provider) "
        "GROUP BY m.run_id ORDER BY min(m.recorded_at), m.run_id",
        {"provider": provider},
    )
    return [r[0] for r in rows]


def mark_exported(adapter: Adapter, provider: str, metric_ids: Sequence[str]) -> None:
    """Log the rows for this provider and stamp exported_at, in one transaction."""
    if not metric_ids:
        return
    batch_id = uuid.uuid4().hex
    now = utcnow()
    with adapter.transaction():
        for start in range(0, len(metric_ids), 200):
            chunk = metric_ids[start : start + 200]
            params: dict[str, Any] = {"p": provider, "b": batch_id, "ts": now}
            values = []
            for i, mid in enumerate(chunk):
                params[f"m{i}"] = mid
                values.append(f"($m{i}, $p, $b, $ts)")
            sql = (
                "INSERT INTO idr_out.metrics_export_log (metric_id, provider, batch_id, exported_at) VALUES "
                + ", ".join(values)
            )
            for stmt in adapter.translate(sql):
                adapter.execute(stmt, params)
        update = (
            "UPDATE idr_out.metrics_export SET exported_at = $ts "
            "WHERE exported_at IS NULL AND metric_id IN ("
            "SELECT metric_id FROM idr_out.metrics_export_log WHERE provider = $p AND batch_id = $b)"
        )
        for stmt in adapter.translate(update):
            adapter.execute(stmt, {"ts": now, "p": provider, "b": batch_id})


def export_pending(
    adapter: Adapter,
    exporter: Exporter,
    *,
    run_id: Any = _ALL,
    batch_size: int = 1000,
) -> ExportReport:
    """Send every row this provider has not exported yet; stop at the first failure.

    Rows go out oldest first, so a provider that fails keeps its order for the next attempt.
    Per-run providers get exactly one call per run (all its pending rows), others get
    batches of ``batch_size``.
    """
    ensure_export_log(adapter)
    report = ExportReport(exporter.name)
    if exporter.max_batch:
        batch_size = min(batch_size, exporter.max_batch)

    def deliver(unit: list[MetricRow]) -> bool:
        try:
            exporter.export(unit, adapter)
        except Exception as exc:  # report it; the rows stay pending for the next attempt
            report.error = f"{type(exc).__name__}: {exc}"
            return False
        mark_exported(adapter, exporter.name, [r.metric_id for r in unit])
        report.exported += len(unit)
        report.batches += 1
        for rid in dict.fromkeys(r.run_id for r in unit if r.run_id):
            if rid not in report.run_ids:
                report.run_ids.append(rid)
        return True

    try:
        if exporter.per_run:
            runs = pending_run_ids(adapter, exporter.name) if run_id is _ALL else [run_id]
            for rid in runs:
                # A run is tens of rows; no LIMIT so one run is never split over two payloads.
                unit = pending_rows(adapter, exporter.name, limit=2**31 - 1, run_id=rid)
                if unit and not deliver(unit):
                    break
        else:
            while True:
                unit = pending_rows(adapter, exporter.name, limit=batch_size, run_id=run_id)
                if not unit or not deliver(unit) or len(unit) < batch_size:
                    break
    finally:
        exporter.close()
    return report
