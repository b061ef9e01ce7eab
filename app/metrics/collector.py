"""Native Prometheus exposition of ``idr_out.metrics_export``, read at scrape time.

What a scrape shows:

* every metric of the taxonomy as a gauge holding the *latest* value per label set
  (labels from ``taxonomy.SPECS``: never ``run_id``, so series do not grow with runs);
* ``idr_run_status{status=...}`` as a state set (1 for the last run's status);
* ``<name>_cumulative_total`` counters (entities processed, edges created/updated, groups
  skipped, values excluded) and ``idr_runs_total{status}``: sums over the whole history,
  so ``rate()`` / ``increase()`` work as Prometheus expects;
* ``idr_last_run_info{run_id,status,...}``: the one series that carries a run id;
* ``idr_last_run_timestamp_seconds`` / ``idr_last_success_timestamp_seconds`` for the
  stale-run alert; ``idr_metrics_export_up`` (0 when the warehouse could not be read) and
  ``idr_metrics_export_age_seconds`` (how old the values served are).

Speed: one GROUP BY over the table per scrape (DuckDB aggregates 100k rows in a few ms);
everything after it works on the few hundred groups only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from app.core.vocabulary import SUCCESS_STATUSES
from app.metrics.taxonomy import RUN_LABELS, SPECS, cumulative_name
from app.platforms.base import Adapter

log = logging.getLogger(__name__)

AdapterFactory = Callable[[], Adapter]

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")

# One scan: latest value, history sum, latest run and the last time a state was 1.
_GROUPS_SQL = """
SELECT metric_name,
       dimensions,
       arg_max(metric_value, recorded_at) AS last_value,
       epoch(max(recorded_at)) AS last_at,
       sum(metric_value) AS total,
       arg_max(run_id, recorded_at) AS last_run_id,
       epoch(max(recorded_at) FILTER (WHERE metric_value > 0)) AS last_positive_at
FROM idr_out.metrics_export
WHERE recorded_at IS NOT NULL
GROUP BY metric_name, dimensions
"""


@dataclass
class _Group:
    name: str
    labels: dict[str, str]
    last_value: float
    last_at: float
    total: float
    last_run_id: str | None
    last_positive_at: float | None


def _label_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _project(name: str, dims: dict[str, Any]) -> dict[str, str]:
    """Dimension JSON -> Prometheus labels allowed for this metric (bounded cardinality)."""
    spec = SPECS.get(name)
    if spec is not None:
        return {k: _label_value(dims[k]) for k in spec.labels if k in dims}
    # A user's own metric: expose its dimensions, minus run_id, with safe label names.
    out: dict[str, str] = {}
    for k, v in dims.items():
        key = _LABEL_BAD.sub("_", str(k))
        if key and not key[0].isdigit() and not key.startswith("__") and key != "run_id":
            out[key] = _label_value(v)
    return out


def _read_groups(adapter: Adapter) -> list[_Group]:
    groups: list[_Group] = []
    for name, dims_text, last_value, last_at, total, last_run_id, last_pos in adapter.fetchall(_GROUPS_SQL):
        if not _NAME_RE.match(name or ""):
            continue  # unrepresentable metric name: skip rather than break the whole page
        try:
            dims = json.loads(dims_text) if dims_text else {}
        except ValueError:
            dims = {}
        if not isinstance(dims, dict):
            dims = {}
        groups.append(
            _Group(
                name,
                _project(name, dims),
                float(last_value),
                float(last_at),
                float(total or 0.0),
                last_run_id,
                None if last_pos is None else float(last_pos),
            )
        )
    return groups


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def snapshot(adapter: Adapter) -> list[Metric]:
    """All metric families for the current content of metrics_export."""
    groups = _read_groups(adapter)

    # Latest value per (name, projected labels): several raw dimension sets can project
    # onto one label set (cluster metrics after a FULL and after an INCR run).
    latest: dict[str, dict[tuple, _Group]] = {}
    for g in groups:
        slot = latest.setdefault(g.name, {})
        k = _key(g.labels)
        if k not in slot or g.last_at > slot[k].last_at:
            slot[k] = g

    families: list[Metric] = []
    for name in sorted(latest):
        series = latest[name]
        spec = SPECS.get(name)
        help_ = spec.help if spec else f"{name} (from idr_out.metrics_export)"
        # Label sets may differ inside a family (per-rule series next to their aggregate):
        # an absent label is emitted as absent, not as label="".
        fam = Metric(spec.exposed_name if spec else name, help_, "gauge")
        for _, g in sorted(series.items()):
            fam.add_sample(fam.name, dict(g.labels), g.last_value)
        families.append(fam)

    families += _cumulative_families(groups)
    families += _run_families(groups)
    return families


def _cumulative_families(groups: list[_Group]) -> list[Metric]:
    sums: dict[str, dict[tuple, float]] = {}
    for g in groups:
        spec = SPECS.get(g.name)
        if spec is not None and spec.cumulative:
            slot = sums.setdefault(g.name, {})
            slot[_key(g.labels)] = slot.get(_key(g.labels), 0.0) + g.total
    out: list[Metric] = []
    for name in sorted(sums):
        fam = Metric(cumulative_name(name), f"Sum of {name} over all recorded runs.", "counter")
        for key, value in sorted(sums[name].items()):
            fam.add_sample(fam.name + "_total", dict(key), value)
        out.append(fam)
    return out


def _run_families(groups: list[_Group]) -> list[Metric]:
    """Runs by status, last run info and timestamps, from the idr_run_status state rows."""
    runs = CounterMetricFamily("idr_runs", "Runs recorded, by final status.", labels=[*RUN_LABELS, "status"])
    info = InfoMetricFamily("idr_last_run", "The last run per platform, mode and dry_run.")
    last_ts = GaugeMetricFamily(
        "idr_last_run_timestamp_seconds",
        "When the last run was recorded (Unix time).",
        labels=list(RUN_LABELS),
    )
    ok_ts = GaugeMetricFamily(
        "idr_last_success_timestamp_seconds",
        "When the last successful run was recorded (Unix time).",
        labels=list(RUN_LABELS),
    )
    per_base: dict[tuple[str, ...], dict[str, Any]] = {}
    for g in sorted((g for g in groups if g.name == "idr_run_status"), key=lambda g: _key(g.labels)):
        status = g.labels.get("status", "")
        base = tuple(g.labels.get(k, "") for k in RUN_LABELS)
        runs.add_metric([*base, status], g.total)
        st = per_base.setdefault(base, {"at": -1.0, "run_id": None, "status": None, "ok_at": None})
        if g.last_value > 0 and g.last_at >= st["at"]:
            st.update(at=g.last_at, run_id=g.last_run_id, status=status)
        if status in SUCCESS_STATUSES and g.last_positive_at is not None:
            st["ok_at"] = max(st["ok_at"] or 0.0, g.last_positive_at)
    for base, st in sorted(per_base.items()):
        if st["status"] is not None:
            info.add_metric(
                [],
                {
                    **dict(zip(RUN_LABELS, base, strict=True)),
                    "run_id": st["run_id"] or "",
                    "status": st["status"],
                },
            )
            last_ts.add_metric(list(base), st["at"])
        if st["ok_at"] is not None:
            ok_ts.add_metric(list(base), st["ok_at"])
    return [runs, info, last_ts, ok_ts]


class SnapshotStore(Protocol):
    """Keeps the last exposition read, for a process that has not read one itself yet
    (an API restarted while a worker holds the DuckDB file)."""

    def save(self, body: bytes, read_at: float) -> None: ...

    def load(self) -> tuple[bytes, float] | None: ...


class IdrCollector(Collector):
    """Reads metrics_export through a fresh adapter from ``adapter_factory`` on every scrape.

    ``cache_key`` (optional, cheap, e.g. the DuckDB file's stat) lets a scrape reuse the
    previous result when the warehouse has not changed: opening a DuckDB database costs
    more than the query itself. When the warehouse cannot be read (another process holds
    DuckDB's lock), the last good families are served with ``idr_metrics_export_up 0`` and
    ``idr_metrics_export_age_seconds`` saying how old they are, so series do not vanish and
    alerts do not flap during a run. ``store`` (optional) keeps the last read across restarts.
    """

    def __init__(
        self,
        adapter_factory: AdapterFactory,
        *,
        cache_key: Callable[[], Hashable] | None = None,
        store: SnapshotStore | None = None,
    ) -> None:
        self._factory = adapter_factory
        self._cache_key = cache_key
        self._store = store
        self._lock = threading.Lock()
        self._last_key: Hashable | None = None
        self._last: list[Metric] | None = None
        self._checked_at: float | None = None  # when _last was last known to be current

    def describe(self) -> list[Metric]:
        # Families depend on the table's content; an empty describe() keeps registration
        # from running a warehouse query.
        return []

    def _read(self) -> list[Metric]:
        adapter = self._factory()
        try:
            return snapshot(adapter)
        finally:
            adapter.close()

    def _save(self, families: list[Metric], at: float) -> None:
        if self._store is None:
            return
        try:
            self._store.save(_exposition(families), at)
        except Exception:  # the copy is a convenience; the scrape still answers
            log.warning("saving the metrics snapshot failed", exc_info=True)

    def _restore(self) -> None:
        if self._store is None or self._last is not None:
            return
        try:
            saved = self._store.load()
        except Exception:
            log.warning("loading the metrics snapshot failed", exc_info=True)
            return
        if saved is not None:
            body, at = saved
            self._last = list(text_string_to_metric_families(body.decode()))
            self._checked_at = at

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("idr_metrics_export_up", "1 if idr_out.metrics_export could be read.")
        age = GaugeMetricFamily(
            "idr_metrics_export_age_seconds",
            "Seconds since the warehouse metrics served here were last read (0 when read at this scrape).",
        )
        with self._lock:  # concurrent scrapes share one read instead of racing on the cache
            key: Hashable | None = None
            try:
                key = self._cache_key() if self._cache_key else None
                if key is None or key != self._last_key or self._last is None:
                    self._last = self._read()
                    self._last_key = key
                    self._save(self._last, time.time())
                self._checked_at = time.time()
                families, ok = self._last, True
            except Exception as e:  # a scrape must answer even when the warehouse is busy or down
                log.warning("reading idr_out.metrics_export failed: %s", str(e).splitlines()[0] if str(e) else e)
                self._last_key = None
                self._restore()
                families, ok = self._last or [], False
            checked = self._checked_at
        up.add_metric([], 1.0 if ok else 0.0)
        yield up
        if families and checked is not None:
            age.add_metric([], 0.0 if ok else max(time.time() - checked, 0.0))
            yield age
        yield from families


def _exposition(families: list[Metric]) -> bytes:
    reg = CollectorRegistry(auto_describe=False)

    class _Fixed(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from families

    reg.register(_Fixed())
    return generate_latest(reg)


def file_state_key(*paths: str) -> Callable[[], Hashable]:
    """A cache_key for file-backed warehouses: changes whenever any of the files does."""

    def key() -> Hashable:
        out = []
        for p in paths:
            try:
                st = os.stat(p)
                out.append((p, st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                out.append((p, None))
        return tuple(out)

    return key


def make_registry(
    adapter_factory: AdapterFactory,
    *,
    cache_key: Callable[[], Hashable] | None = None,
    store: SnapshotStore | None = None,
) -> CollectorRegistry:
    """A registry holding only the idr collector (the HTTP service may add its own)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IdrCollector(adapter_factory, cache_key=cache_key, store=store))
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """Exposition body and content type, for any web framework."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
