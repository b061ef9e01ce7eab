"""A tiny warehouse for engine tests: sources with email/phone/loyalty identifiers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.config.apply import apply_config
from app.config.store import read_config
from app.core.run_record import RunResult
from app.core.settings import get_settings
from app.pipeline.runner import run_pipeline
from app.platforms.duckdb import DuckDBAdapter
from app.schema import init_schema
from app.schema.golden import sync_golden

# Throw-away warehouses live in memory-backed storage when the machine has it.
_TEMPLATES = Path("/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()) / f"idr-tests-{os.getpid()}"


def _remove(path: str) -> None:
    for p in (path, path + ".wal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(p)
    shutil.rmtree(path + ".tmp", ignore_errors=True)


T0 = datetime(2024, 1, 1)


def base_config(
    tables: Iterable[str],
    *,
    max_group_size: int = 50,
    exclusions=(),
    extra: dict | None = None,
    soft_delete: bool = False,
    reconcile: str | None = None,
) -> dict:
    """``soft_delete``: the tables' is_deleted column flags deleted rows;
    ``reconcile``: every source's reconcile_deletes."""
    tables = list(tables)
    doc: dict[str, Any] = {
        "sources": [
            {
                "table_id": t,
                "table_fqn": f"src.{t}",
                "entity_key_expr": "id",
                "watermark_column": "updated_at",
                **({"deleted_flag_expr": "is_deleted"} if soft_delete else {}),
                **({"reconcile_deletes": reconcile} if reconcile else {}),
            }
            for t in tables
        ],
        "source_trust": [{"table_id": t, "trust_rank": i + 1} for i, t in enumerate(tables)],
        "rules": [
            {
                "rule_id": "R_EMAIL",
                "identifier_type": "EMAIL",
                "canonicalize": "EMAIL",
                "max_group_size": max_group_size,
            },
            {
                "rule_id": "R_PHONE",
                "identifier_type": "PHONE",
                "canonicalize": "PHONE",
                "max_group_size": max_group_size,
            },
        ],
        "identifier_mappings": [
            m
            for t in tables
            for m in (
                {"table_id": t, "identifier_type": "EMAIL", "identifier_value_expr": "email"},
                {"table_id": t, "identifier_type": "PHONE", "identifier_value_expr": "phone"},
            )
        ],
        "exclusions": list(exclusions),
        "attribute_mappings": [
            m
            for t in tables
            for m in (
                {"table_id": t, "attribute_name": "name", "attribute_expr": "name"},
                {"table_id": t, "attribute_name": "email", "attribute_expr": "email"},
            )
        ],
        "survivorship_rules": [{"attribute_name": "name", "strategy": "RECENCY"}],
    }
    if extra:
        doc.update(extra)
    return doc


@dataclass
class World:
    adapter: DuckDBAdapter
    tables: list[str]
    clock: datetime = T0
    runs: list[RunResult] = field(default_factory=list)

    @classmethod
    def create(cls, path: str | None = None, tables: Iterable[str] = ("crm",), **cfg: Any) -> World:
        """A fresh warehouse; copies a cached template so set-up costs little per test."""
        tables = list(tables)
        key = hashlib.sha1(json.dumps([tables, cfg], sort_keys=True, default=str).encode()).hexdigest()[:16]
        template = _TEMPLATES / f"{key}.duckdb"
        if not template.exists():
            _TEMPLATES.mkdir(parents=True, exist_ok=True)
            tmp = template.with_suffix(f".{os.getpid()}.tmp")
            a = DuckDBAdapter.from_path(str(tmp))
            init_schema(a)
            a.execute("CREATE SCHEMA IF NOT EXISTS src")
            for t in tables:
                a.execute(
                    f'CREATE TABLE src."{t}" (id VARCHAR, email VARCHAR, phone VARCHAR, name VARCHAR, '
                    "updated_at TIMESTAMP" + (", is_deleted BOOLEAN)" if cfg.get("soft_delete") else ")")
                )
            apply_config(a, base_config(tables, **cfg))
            a.execute("CHECKPOINT")
            a.close()
            os.replace(tmp, template)
        if path and path != ":memory:":
            shutil.copyfile(template, path)
            return cls(DuckDBAdapter.from_path(path), tables)
        # In memory: statements run faster than on a file.
        a = DuckDBAdapter.from_path(":memory:")
        a.execute("ATTACH $p AS tmpl (READ_ONLY)", {"p": str(template)})
        a.execute("COPY FROM DATABASE tmpl TO memory")
        a.execute("DETACH tmpl")
        return cls(a, tables)

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def upsert(
        self,
        table: str,
        id: str,
        email: str | None = None,
        phone: str | None = None,
        name: str | None = None,
        deleted: bool | None = None,
    ) -> None:
        """Insert or replace a source record (new updated_at: seen by the next INCR);
        ``deleted`` sets is_deleted (tables made with soft_delete=True)."""
        a = self.adapter
        a.execute(f'DELETE FROM src."{table}" WHERE id = $id', {"id": id})
        cols, vals = "id, email, phone, name, updated_at", "$id, $e, $p, $n, $ts"
        params = {"id": id, "e": email, "p": phone, "n": name, "ts": self.tick()}
        if deleted is not None:
            cols, vals, params = cols + ", is_deleted", vals + ", $d", {**params, "d": deleted}
        a.execute(f'INSERT INTO src."{table}" ({cols}) VALUES ({vals})', params)

    def soft_delete(self, table: str, id: str) -> None:
        """Flag a source record deleted (a newer updated_at: seen by the next INCR)."""
        self.adapter.execute(
            f'UPDATE src."{table}" SET is_deleted = TRUE, updated_at = $ts WHERE id = $id',
            {"id": id, "ts": self.tick()},
        )

    def delete(self, table: str, id: str) -> None:
        self.adapter.execute(f'DELETE FROM src."{table}" WHERE id = $id', {"id": id})

    def run(self, mode: str = "FULL", dry_run: bool = False, engine: str | None = None) -> RunResult:
        """``engine`` forces the connected-components path ('sql' or 'unionfind')."""
        settings = get_settings().model_copy(update={"cc_engine": engine}) if engine else None
        r = run_pipeline(self.adapter, mode, dry_run=dry_run, settings=settings)
        self.runs.append(r)
        return r

    def membership(self) -> dict[str, str]:
        return dict(
            self.adapter.fetchall("SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current")
        )

    def partition(self) -> set[frozenset[str]]:
        groups: dict[str, set[str]] = {}
        for k, rid in self.membership().items():
            groups.setdefault(rid, set()).add(k)
        return {frozenset(g) for g in groups.values()}

    def clusters(self) -> dict[str, int]:
        return dict(self.adapter.fetchall("SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current"))

    def snapshot(self, tables: Iterable[str] | None = None) -> dict[str, list[tuple]]:
        """Every production table's rows, sorted: byte-for-byte comparison of state."""
        names = list(tables) if tables else PRODUCTION_TABLES
        out = {}
        for name in names:
            rows = self.adapter.fetchall(f"SELECT * FROM {name}")
            out[name] = sorted(rows, key=repr)
        return out


# Every stored (entity, type, value): identifiers_current holds the values no edge links,
# a linked value's holders are the ends of its edges (README: Incremental runs).
STORED_IDENTIFIERS = (
    "SELECT entity_key, identifier_type, identifier_value_norm FROM idr_out.identifiers_current "
    "UNION SELECT left_entity_key, identifier_type, identifier_value_norm FROM idr_out.identity_edges_current "
    "UNION SELECT right_entity_key, identifier_type, identifier_value_norm FROM idr_out.identity_edges_current"
)

PRODUCTION_TABLES = [
    "idr_out.identity_resolved_membership_current",
    "idr_out.identity_clusters_current",
    "idr_out.identity_edges_current",
    "idr_out.identifiers_current",
    "idr_out.golden_profile_current",
    "idr_out.rule_match_audit_current",
    "idr_meta.run_state",
    "idr_meta.resolved_id_sequence",
]


def clone(world: World) -> World:
    """An independent copy of the warehouse (same prior state), in memory."""
    a = DuckDBAdapter.from_path(":memory:")
    src = world.adapter
    for schema in ("idr_meta", "idr_out", "idr_state", "src"):
        a.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    init_schema(a)
    for schema, table in src.fetchall(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('idr_meta', 'idr_out', 'idr_state', 'src') AND table_type = 'BASE TABLE'"
    ):
        arrow = src.arrow(f'SELECT * FROM "{schema}"."{table}"')
        a.register_arrow("_clone", arrow)
        a.execute(f'CREATE OR REPLACE TABLE "{schema}"."{table}" AS SELECT * FROM _clone')
        a.unregister("_clone")
    sync_golden(a, read_config(a), force=True)  # the golden views follow the copied configuration
    return World(a, list(world.tables), world.clock)
