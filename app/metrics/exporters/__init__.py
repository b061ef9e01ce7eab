"""Push exporters (plugins discovered through the ``idr.metrics_exporters`` entry points)."""

from app.metrics.exporters.base import (
    ENTRY_POINT_GROUP,
    Exporter,
    ExportReport,
    MetricRow,
    available_exporters,
    export_pending,
    load_exporter,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExportReport",
    "Exporter",
    "MetricRow",
    "available_exporters",
    "export_pending",
    "load_exporter",
]
