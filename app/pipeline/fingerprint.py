"""What a run's result depends on, as fingerprints: the configuration (what the partition
depends on), and for dry runs and their apply every input (config, source contents,
production state), so an apply can refuse a proposal whose inputs changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.config.model import IdrConfig
from app.config.store import read_config
from app.pipeline import history
from app.platforms.base import Adapter


def config_fingerprint(config: IdrConfig) -> str:
    """What the partition depends on: everything but run-time settings."""
    doc = config.model_dump(mode="json", exclude={"settings"})
    for src in doc.get("sources", []):
        # When keys are compared does not change the partition (FULL always does); an
        # unset deletion flag is left out, so configurations written before it existed
        # keep their fingerprint.
        src.pop("reconcile_deletes", None)
        if src.get("deleted_flag_expr") is None:
            src.pop("deleted_flag_expr", None)
    for x in doc.get("exclusions", []):
        x.pop("created_at", None)
        x.pop("created_by", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def input_fingerprint(adapter: Adapter, config_fp: str) -> dict[str, Any]:
    """What a proposal was computed from: configuration, every active source's content,
    and production state (last real run, watermarks, id sequence)."""
    cfg = read_config(adapter)
    sources = {
        s.table_id: adapter.table_fingerprint(s.table_fqn)
        for s in sorted(cfg.sources, key=lambda s: s.table_id)
        if s.is_active
    }
    state_rows = [
        history.last_published(adapter),
        sorted(map(repr, adapter.fetchall("SELECT * FROM idr_meta.run_state"))),
        adapter.scalar("SELECT next_value FROM idr_meta.resolved_id_sequence WHERE sequence_name = 'resolved_id'"),
        adapter.scalar("SELECT count(*) FROM idr_out.identity_resolved_membership_current"),
    ]
    state = hashlib.sha256(json.dumps(state_rows, default=str).encode()).hexdigest()
    return {"config": config_fp, "sources": sources, "state": state}


def fingerprint_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if old.get("config") != new.get("config"):
        out.append("the configuration (rules, mappings, exclusions, sources) changed")
    old_s, new_s = old.get("sources", {}), new.get("sources", {})
    for t in sorted(set(old_s) | set(new_s)):
        if t not in new_s:
            out.append(f"source {t} is no longer active")
        elif t not in old_s:
            out.append(f"source {t} was added")
        elif old_s[t] != new_s[t]:
            out.append(f"source {t} changed (rows added, updated or deleted)")
    if old.get("state") != new.get("state"):
        out.append("production state changed (another run was published since)")
    return out
