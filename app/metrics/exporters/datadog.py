"""DataDog via the official client (``datadog-api-client``, v2 metrics intake).

Tags are the row's dimensions (``key:value``) plus configured extra tags. ``run_id`` is
not a tag: DataDog bills custom metrics per tag combination, and a per-run tag would
create a new billed series on every run (the design's example did that).
Per-run counts (``metric_type='counter'``) go out as COUNT, everything else as GAUGE.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v2.api.metrics_api import MetricsApi
from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
from datadog_api_client.v2.model.metric_payload import MetricPayload
from datadog_api_client.v2.model.metric_point import MetricPoint
from datadog_api_client.v2.model.metric_series import MetricSeries

from app.core.errors import ConfigError
from app.metrics.exporters.base import Exporter, MetricRow
from app.metrics.settings import get_metrics_settings
from app.platforms.base import Adapter

_MAX_SERIES_PER_REQUEST = 500  # keeps each request far below the 500 KB intake limit
# The intake drops points older than one hour; a late export is stamped just inside it.
_MAX_AGE_SECONDS = 3000


def _tag(key: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"{key}:{value}"


class DataDogExporter(Exporter):
    name = "datadog"
    max_batch = _MAX_SERIES_PER_REQUEST

    def __init__(
        self, api_key: str, *, base_url: str, tags: Sequence[str] = (), max_retries: int = 3
    ) -> None:
        if not api_key:
            raise ConfigError("datadog exporter needs an API key", field="datadog_api_key")
        self.base_url = base_url.rstrip("/")
        self.tags = [t for t in tags if t]
        cfg = Configuration(host=self.base_url, enable_retry=True, max_retries=max_retries)
        cfg.api_key["apiKeyAuth"] = api_key
        self._client = ApiClient(cfg)
        self._api = MetricsApi(self._client)

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> DataDogExporter:
        import os

        s = get_metrics_settings()
        key = options.get("api_key") or (s.datadog_api_key.get_secret_value() if s.datadog_api_key else "")
        key = key or os.environ.get("DD_API_KEY", "")
        tags = (options.get("tags") or s.datadog_tags).split(",")
        return cls(key, base_url=options.get("url") or s.datadog_url, tags=[t.strip() for t in tags])

    def series(self, rows: Sequence[MetricRow], now: float | None = None) -> list[MetricSeries]:
        now = time.time() if now is None else now
        out = []
        for r in rows:
            ts = r.recorded_at.replace(tzinfo=UTC).timestamp() if r.recorded_at else now
            ts = max(ts, now - _MAX_AGE_SECONDS)
            tags = sorted(_tag(k, v) for k, v in r.dimensions.items()) + self.tags
            out.append(
                MetricSeries(
                    metric=r.metric_name,
                    type=MetricIntakeType.COUNT if r.metric_type == "counter" else MetricIntakeType.GAUGE,
                    points=[MetricPoint(timestamp=int(ts), value=float(r.metric_value))],
                    tags=tags,
                )
            )
        return out

    def export(self, rows: Sequence[MetricRow], adapter: Adapter) -> None:
        # One request per call (max_batch caps the rows), so success marks exactly what was sent.
        # Raises ApiException on 4xx/5xx after the client's own retries: rows stay pending.
        self._api.submit_metrics(body=MetricPayload(series=self.series(rows)))

    def close(self) -> None:
        self._client.close()
