"""Exporter settings: a typed view of the ``metrics_*`` fields of the one Settings object
(environment ``IDR_METRICS_*``); explicit options (CLI ``--option key=value``) override them."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from app.core.settings import get_settings


class MetricsSettings(BaseModel):
    export_batch_size: int
    webhook_url: str | None
    webhook_secret: SecretStr | None
    webhook_timeout_seconds: float
    webhook_max_attempts: int
    webhook_backoff_seconds: float
    webhook_backoff_max_seconds: float
    datadog_api_key: SecretStr | None
    datadog_url: str
    datadog_tags: str
    pushgateway_url: str | None
    pushgateway_job: str
    pushgateway_instance: str


def get_metrics_settings() -> MetricsSettings:
    s = get_settings()
    return MetricsSettings(**{name: getattr(s, f"metrics_{name}") for name in MetricsSettings.model_fields})
