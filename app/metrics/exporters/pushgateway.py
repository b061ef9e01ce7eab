"""Prometheus Pushgateway: pushes the same families the /metrics page shows.

A push replaces the whole group (HTTP PUT), and what it carries is the full current
state computed from metrics_export (latest values, cumulative counters, run info), not
just the new rows: the gateway then serves exactly what a scrape would, and the design's
alert rules work unchanged on either path. The pending rows are marked once the push
that included them succeeded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from app.core.errors import ConfigError
from app.metrics.collector import snapshot
from app.metrics.exporters.base import Exporter, MetricRow
from app.metrics.settings import get_metrics_settings
from app.platforms.base import Adapter


class _Frozen(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class PushgatewayExporter(Exporter):
    name = "pushgateway"

    def __init__(self, url: str, *, job: str = "idr", instance: str = "", timeout: float = 10.0) -> None:
        if not url:
            raise ConfigError("pushgateway exporter needs a url", field="pushgateway_url")
        self.url = url
        self.job = job
        self.grouping_key = {"instance": instance} if instance else {}
        self.timeout = timeout

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PushgatewayExporter:
        s = get_metrics_settings()
        return cls(
            options.get("url") or s.pushgateway_url or "",
            job=options.get("job") or s.pushgateway_job,
            instance=options.get("instance") or s.pushgateway_instance,
        )

    def export(self, rows: Sequence[MetricRow], adapter: Adapter) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Frozen(snapshot(adapter)))
        # Raises URLError/HTTPError on failure: the rows stay pending.
        push_to_gateway(
            self.url, job=self.job, registry=registry, grouping_key=self.grouping_key, timeout=self.timeout
        )
