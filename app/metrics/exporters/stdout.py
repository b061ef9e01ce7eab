"""Writes each row as one JSON line: for cron logs, debugging, and piping into other tools."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from app.core.timefmt import rfc3339
from app.metrics.exporters.base import Exporter, MetricRow
from app.platforms.base import Adapter


class StdoutExporter(Exporter):
    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> StdoutExporter:
        return cls()

    def export(self, rows: Sequence[MetricRow], adapter: Adapter) -> None:
        stream = self._stream or sys.stdout  # resolved late so test capture and redirection work
        for r in rows:
            line = {
                "metric_id": r.metric_id,
                "run_id": r.run_id,
                "name": r.metric_name,
                "value": r.metric_value,
                "type": r.metric_type,
                "dimensions": r.dimensions,
                "recorded_at": rfc3339(r.recorded_at),
            }
            stream.write(json.dumps(line, sort_keys=True) + "\n")
        stream.flush()
