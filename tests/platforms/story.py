"""One resolution story, told identically on every platform, and what it leaves behind.

The story packs the engine scenarios into one warehouse (disjoint identifiers, so the
scenarios cannot touch each other): long chains across two sources, phone/email
canonicalization, a junk value over max_group_size, EXACT and LIKE exclusions, quotes and
injection-looking strings, then an INCR delta that bridges two chains (merge), breaks a
cluster (split), adds, updates and deletes records; then deletes INCR runs see: a
soft-deleted bridge (the merge splits again), a hard delete found by key reconciliation,
an erasure by email that keeps a re-sent row out — with a dry run of each real run.
``observe`` reads every production and dry-run table in a platform-neutral form (no
timestamps set from the wall clock, no run ids), so observations compare with ``==``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.config.apply import apply_config
from app.core.run_record import RunResult
from app.pipeline.publish import NOT_ATOMIC
from app.pipeline.runner import run_pipeline
from app.platforms.base import Adapter
from app.schema import init_schema

T0 = datetime(2024, 1, 1)
TABLES = ("crm", "shop")
EVIL = "x'; DROP TABLE idr_out.run_history; --"
# Values that look like every placeholder style a driver might scan for.
ODD = ["?", ":name", "$1", "@p", "%s", "%(x)s", 'dq"uote', "back\\slash", "ünï©ødé", "50%_off"]


def config() -> dict[str, Any]:
    rules = [
        {"rule_id": "R_EMAIL", "identifier_type": "EMAIL", "canonicalize": "EMAIL", "max_group_size": 5},
        {"rule_id": "R_PHONE", "identifier_type": "PHONE", "canonicalize": "PHONE", "max_group_size": 5},
    ]
    return {
        "sources": [
            {
                "table_id": t,
                "table_fqn": f"src.{t}",
                "entity_key_expr": "id",
                "watermark_column": "updated_at",
                "deleted_flag_expr": "is_deleted",
                "reconcile_deletes": "every_run" if t == "crm" else "never",
            }
            for t in TABLES
        ],
        "source_trust": [{"table_id": t, "trust_rank": i + 1} for i, t in enumerate(TABLES)],
        "rules": rules,
        "identifier_mappings": [
            {"table_id": t, "identifier_type": k, "identifier_value_expr": c}
            for t in TABLES
            for k, c in (("EMAIL", "email"), ("PHONE", "phone"))
        ],
        "exclusions": [
            {"identifier_type": "EMAIL", "identifier_value_pattern": " NoReply@X.com", "match_type": "EXACT"},
            {"identifier_type": "EMAIL", "identifier_value_pattern": "%@spam.example", "match_type": "LIKE"},
            {"identifier_type": "PHONE", "identifier_value_pattern": "(000) 000-0000", "match_type": "EXACT"},
        ],
        "attribute_mappings": [
            {"table_id": t, "attribute_name": a, "attribute_expr": a} for t in TABLES for a in ("name", "email")
        ],
        "survivorship_rules": [
            {"attribute_name": "name", "strategy": "RECENCY"},
            {"attribute_name": "email", "strategy": "SOURCE_PRIORITY", "source_priority_list": "shop,crm"},
        ],
    }


@dataclass
class Warehouse:
    """A platform-neutral handle on one warehouse under test."""

    adapter: Adapter
    clock: datetime = T0
    runs: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0

    def setup(self) -> None:
        a = self.adapter
        init_schema(a)
        a.execute("CREATE SCHEMA IF NOT EXISTS src")
        for t in TABLES:
            a.execute(
                f"CREATE TABLE IF NOT EXISTS {a.table('src', t)} (id VARCHAR, email VARCHAR, phone VARCHAR, "
                "name VARCHAR, updated_at TIMESTAMP, is_deleted BOOLEAN)"
            )
        apply_config(a, config())

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def upsert_many(
        self, rows: list[tuple[str, str, str | None, str | None, str | None]], deleted: bool = False
    ) -> None:
        """(table, id, email, phone, name): replace each record, newest timestamp wins;
        ``deleted`` flags them deleted (is_deleted, the sources' deleted_flag_expr)."""
        a = self.adapter
        for table in TABLES:
            mine = [r for r in rows if r[0] == table]
            if not mine:
                continue
            t = a.table("src", table)
            # Ids go in as bound values (they contain quotes and placeholder look-alikes);
            # one DELETE per batch (on Spark every DELETE rewrites the table).
            ids = {f"i{i}": r[1] for i, r in enumerate(mine)}
            a.execute(f"DELETE FROM {t} WHERE id IN ({', '.join('$' + k for k in ids)})", ids)
            a.executemany(
                f"INSERT INTO {t} (id, email, phone, name, updated_at, is_deleted) VALUES ($id, $e, $p, $n, $ts, $d)",
                [{"id": r[1], "e": r[2], "p": r[3], "n": r[4], "ts": self.tick(), "d": deleted} for r in mine],
            )

    def delete(self, table: str, id_: str) -> None:
        self.adapter.execute(f"DELETE FROM {self.adapter.table('src', table)} WHERE id = $id", {"id": id_})

    def run(self, mode: str, dry_run: bool = False) -> RunResult:
        t = time.perf_counter()
        r = run_pipeline(self.adapter, mode, dry_run=dry_run)
        self.seconds += time.perf_counter() - t
        assert r.status in ("SUCCESS", "SUCCESS_WITH_WARNINGS", "DRY_RUN_COMPLETE"), (
            f"{mode} dry={dry_run} failed in {r.error_stage}: {r.error_message}"
        )
        self.runs.append(r)
        return r


def base_rows() -> list[tuple[str, str, str | None, str | None, str | None]]:
    rows: list[tuple[str, str, str | None, str | None, str | None]] = []
    # Chain A (12 records, alternating email/phone links, across both sources).
    for i in range(12):
        rows.append(
            (
                "crm" if i % 3 else "shop",
                f"a{i:02d}",
                f"A{(i + 1) // 2}@chain.example",
                f"+1 (555) 100-{i // 2:04d}",
                f"Ann {i}",
            )
        )
    # Chain B (10 records).
    for i in range(10):
        rows.append(("crm", f"b{i:02d}", f"b{(i + 1) // 2}@chain.example", f"555-200-{i // 2:04d}", f"Bob {i}"))
    # A three-record cluster whose middle record will lose its links (split).
    rows += [
        ("crm", "c1", "c1@x.example", "555-300-0001", "Cy"),
        ("shop", "c2", "c1@x.example", "555-300-0002", "Cy B"),
        ("crm", "c3", "c3@x.example", "555-300-0002", "Cy C"),
    ]
    # Junk: 7 records share test@test.com (> max_group_size 5); pairs share phones.
    for i in range(7):
        rows.append(("crm", f"j{i}", "test@test.com", f"555-400-{i // 2:04d}", f"Junk {i}"))
    # Exclusions: EXACT (canonicalized like the values) and LIKE.
    rows += [
        ("crm", "x1", "noreply@x.com", None, None),
        ("shop", "x2", " NOREPLY@x.com ", None, None),
        ("crm", "x3", "a@spam.example", "(000) 000-0000", None),
        ("crm", "x4", "a@spam.example", "000-000-0000", None),
    ]
    # Quotes, injection and placeholder look-alikes are data, in keys, values and names.
    rows += [
        ("crm", EVIL, "o'brien@x.example", None, "O'Brien"),
        ("shop", "q2", "O'Brien@x.example", None, 'O\'Brien "Junior"'),
    ]
    for i, v in enumerate(ODD):
        rows.append(("crm", f"odd{i}:{v}", f"odd{i // 2}{v}@odd.example", None, v))
    rows += [("crm", f"s{i}", f"solo{i}@x.example", None, f"Solo {i}") for i in range(3)]
    return rows


def delta_rows() -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [
        # Bridge: links the end of chain A to the end of chain B (merge; A is larger).
        ("shop", "bridge", "b5@chain.example", "+1 555 100 0005", "Bridge"),
        # c2 drops both links: c1 and c3 split apart.
        ("shop", "c2", "c2-new@x.example", "555-399-9999", "Cy B2"),
        # A newcomer joins chain B; another starts its own cluster.
        ("crm", "n1", "B1@chain.example", None, "Newbie"),
        ("crm", "n2", "fresh@x.example", None, "Fresh"),
        # A junk member becomes legitimate; the junk group shrinks to 6: still skipped.
        ("crm", "j6", "j6@x.example", "555-400-0003", "Junk 6b"),
        # A name update changes the golden profile (recency).
        ("crm", "s0", "solo0@x.example", None, "Solo Zero"),
    ]


def story_steps(wh: Warehouse) -> list[tuple[str, dict[str, Any]]]:
    """Tell the story; returns (step name, observation) after every run."""
    out: list[tuple[str, dict[str, Any]]] = []
    wh.setup()
    wh.upsert_many(base_rows())
    out.append(("FULL", observe(wh.adapter, wh.run("FULL"))))
    wh.upsert_many(delta_rows())
    before = production(wh.adapter)
    out.append(("dry INCR", observe(wh.adapter, wh.run("INCR", dry_run=True))))
    # observe() read production right after the dry run: no second read (on Spark each
    # of its eight queries is a job).
    assert out[-1][1]["production"] == before, "a dry run changed production tables"
    out.append(("INCR", observe(wh.adapter, wh.run("INCR"))))
    wh.delete("crm", "s1")
    out.append(("dry FULL with a delete", observe(wh.adapter, wh.run("FULL", dry_run=True))))
    # Deletes INCR sees: the bridge flagged deleted (chains A and B split apart again), and
    # crm:s1's hard delete found by reconciling crm's keys.
    wh.upsert_many([r for r in delta_rows() if r[1] == "bridge"], deleted=True)
    before = production(wh.adapter)
    out.append(("dry INCR with deletes", observe(wh.adapter, wh.run("INCR", dry_run=True))))
    assert out[-1][1]["production"] == before, "a dry run changed production tables"
    out.append(("INCR with deletes", observe(wh.adapter, wh.run("INCR"))))
    # An erasure by email: both records holding it (any case) go, and stay out when the
    # source re-sends one of them.
    from app.services import erasures

    erasures.request(wh.adapter, identifier_type="EMAIL", identifier_value="O'BRIEN@x.example", requested_by="story")
    out.append(("dry INCR with an erasure", observe(wh.adapter, wh.run("INCR", dry_run=True))))
    out.append(("INCR with an erasure", observe(wh.adapter, wh.run("INCR"))))
    wh.upsert_many([("shop", "q2", "o'brien@x.example", None, "O'Brien re-sent")])
    out.append(("INCR with a re-sent erased row", observe(wh.adapter, wh.run("INCR"))))
    # The sources delete both rows holding the email (crm's is gone: reconciliation; shop's
    # is flagged deleted): the erasure lifts, and a new record with the email resolves.
    wh.delete("crm", EVIL)
    wh.upsert_many([("shop", "q2", "o'brien@x.example", None, "O'Brien re-sent")], deleted=True)
    out.append(("INCR lifting the erasure", observe(wh.adapter, wh.run("INCR"))))
    wh.upsert_many([("shop", "q9", "O'Brien@X.example", None, "O'Brien anew")])
    out.append(("INCR after the lift", observe(wh.adapter, wh.run("INCR"))))
    return out


def _rows(a: Adapter, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    return sorted((tuple(_norm(v) for v in r) for r in a.fetchall(sql, params)), key=repr)


def _norm(v: Any) -> Any:
    # Drivers return BIGINT as int, NUMBER as Decimal, BOOLEAN as bool: compare values.
    if hasattr(v, "as_integer_ratio") and not isinstance(v, bool | float):
        return int(v)
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    return v


def production(a: Adapter) -> dict[str, list[tuple]]:
    """Production state, minus wall-clock timestamps."""
    return {
        "membership": _rows(a, "SELECT entity_key, resolved_id FROM idr_out.identity_resolved_membership_current"),
        "clusters": _rows(a, "SELECT resolved_id, cluster_size FROM idr_out.identity_clusters_current"),
        "edges": _rows(
            a,
            "SELECT rule_id, left_entity_key, right_entity_key, identifier_type, identifier_value_norm "
            "FROM idr_out.identity_edges_current",
        ),
        "identifiers": _rows(
            a, "SELECT entity_key, identifier_type, identifier_value_norm FROM idr_out.identifiers_current"
        ),
        "golden": _rows(
            a,
            "SELECT resolved_id, attribute_name, attribute_value, source_entity_key, source_table_id, strategy "
            "FROM idr_out.golden_profile_current",
        ),
        "audit": _rows(
            a,
            "SELECT rule_id, identifier_type, edges, entities_matched, groups_matched, groups_skipped "
            "FROM idr_out.rule_match_audit_current",
        ),
        "run_state": _rows(a, "SELECT table_id, last_watermark_value FROM idr_meta.run_state"),
        "sequence": _rows(a, "SELECT sequence_name, next_value FROM idr_meta.resolved_id_sequence"),
    }


def _neutral_status(status: str, warnings: list[str]) -> str:
    """The status the run has on every platform: a warning that only says the publish was
    not atomic (Spark's per-table swaps) is checked by the conformance test itself."""
    if status == "SUCCESS_WITH_WARNINGS" and all(NOT_ATOMIC in w for w in warnings):
        return "SUCCESS"
    return status


def observe(a: Adapter, r: RunResult) -> dict[str, Any]:
    p = {"r": r.run_id}
    status = _neutral_status(r.status, r.warnings)
    obs: dict[str, Any] = {
        "result": (
            status,
            r.mode,
            r.entities_processed,
            r.edges_created,
            r.edges_updated,
            r.clusters_impacted,
            r.groups_skipped,
            r.values_excluded,
            r.large_clusters,
            r.source_tables_processed,
            sorted(w for w in r.warnings if NOT_ATOMIC not in w),
            sorted(r.entities_removed.items()),
            sorted(r.erasures_applied.values()),
            len(r.erasures_lifted),
        ),
        # The removals in run_history's own columns.
        "removals": _rows(
            a,
            "SELECT entities_removed_soft_delete, entities_removed_erasure, entities_removed_reconciliation "
            "FROM idr_out.run_history WHERE run_id = $r",
            p,
        ),
        "history": [
            (row[0], _neutral_status(row[1], r.warnings), *row[2:])
            for row in _rows(
                a,
                "SELECT run_mode, status, dry_run, entities_processed, edges_created, clusters_impacted, "
                "groups_skipped, values_excluded FROM idr_out.run_history WHERE run_id = $r",
                p,
            )
        ],
        "stages": _rows(
            a, "SELECT stage_name, stage_order, rows_in, rows_out FROM idr_out.stage_metrics WHERE run_id = $r", p
        ),
        "skipped": _rows(
            a,
            "SELECT identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason "
            "FROM idr_out.skipped_identifier_groups WHERE run_id = $r",
            p,
        ),
        "production": production(a),
    }
    if r.dry_run:
        obs["dry_run_results"] = _rows(
            a,
            "SELECT entity_key, current_resolved_id, proposed_resolved_id, change_type, current_cluster_size, "
            "proposed_cluster_size FROM idr_out.dry_run_results WHERE run_id = $r",
            p,
        )
        obs["dry_run_summary"] = _rows(
            a,
            "SELECT total_entities, new_entities, moved_entities, merged_clusters, split_clusters, "
            "largest_proposed_cluster, edges_would_create, groups_would_skip, values_would_exclude, "
            "unchanged_entities, merged_entities, split_entities, removed_entities, run_mode "
            "FROM idr_out.dry_run_summary WHERE run_id = $r",
            p,
        )
        obs["dry_run_cluster_changes"] = _rows(
            a,
            "SELECT current_resolved_id, proposed_resolved_id, members_moved, current_cluster_size, "
            "proposed_cluster_size, change_type FROM idr_out.dry_run_cluster_changes WHERE run_id = $r",
            p,
        )
    return obs
