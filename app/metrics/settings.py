"""Exporter settings from the environment (prefix ``IDR_METRICS_``).

Kept beside the exporters until the lead folds them into ``app.core.settings``;
explicit options (CLI ``--option key=value``) override these.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDR_METRICS_", env_file=".env", extra="ignore")

    export_batch_size: int = Field(1000, description="Rows read and exported per batch.")
    webhook_url: str | None = Field(None, description="Generic JSON webhook receiving run metrics.")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-IDR-Signature.")
    webhook_timeout_seconds: float = Field(10.0, description="Per-request timeout.")
    webhook_max_attempts: int = Field(5, description="Attempts per payload (timeouts and 5xx retry).")
    webhook_backoff_seconds: float = Field(0.5, description="First retry delay; doubles each attempt.")
    webhook_backoff_max_seconds: float = Field(30.0, description="Cap on one retry delay.")
    datadog_api_key: SecretStr | None = Field(None, description="DataDog API key (DD_API_KEY also works).")
    datadog_url: str = Field("https://api.datadoghq.com", description="DataDog API base URL (site).")
    datadog_tags: str = Field("", description="Extra comma-separated tags, e.g. 'env:prod,team:data'.")
    pushgateway_url: str | None = Field(None, description="Prometheus Pushgateway address.")
    pushgateway_job: str = Field("idr", description="Pushgateway job label.")
    pushgateway_instance: str = Field("", description="Pushgateway instance grouping label (optional).")


@lru_cache
def get_metrics_settings() -> MetricsSettings:
    return MetricsSettings()
