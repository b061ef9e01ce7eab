"""One vocabulary: run modes, run statuses, dry-run change types and the defaults of the
warehouse-side settings. Every module imports these names; none spells them again."""

from __future__ import annotations

from typing import Literal, get_args

RunMode = Literal["FULL", "INCR"]
RUN_MODES: tuple[str, ...] = get_args(RunMode)

# Where a run stands. QUEUED and CANCELLED exist only in the service's state database
# (a warehouse's run_history row starts at RUNNING).
RunStatus = Literal["QUEUED", "RUNNING", "SUCCESS", "SUCCESS_WITH_WARNINGS", "FAILED", "DRY_RUN_COMPLETE", "CANCELLED"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
ACTIVE_STATUSES: tuple[str, ...] = ("QUEUED", "RUNNING")
TERMINAL_STATUSES: tuple[str, ...] = tuple(s for s in RUN_STATUSES if s not in ACTIVE_STATUSES)
# Statuses a finished pipeline run reports (what idr_run_status exposes).
OUTCOME_STATUSES: tuple[str, ...] = ("SUCCESS", "SUCCESS_WITH_WARNINGS", "FAILED", "DRY_RUN_COMPLETE")
# A real run that published.
PUBLISHED_STATUSES: tuple[str, ...] = ("SUCCESS", "SUCCESS_WITH_WARNINGS")
SUCCESS_STATUSES: frozenset[str] = frozenset({*PUBLISHED_STATUSES, "DRY_RUN_COMPLETE"})

# Per entity in a dry run's diff (precedence: NEW, REMOVED, SPLIT, MERGED, MOVED, UNCHANGED;
# see app/pipeline/dryrun.py).
ChangeType = Literal["NEW", "MOVED", "MERGED", "SPLIT", "REMOVED", "UNCHANGED"]
CHANGE_TYPES: tuple[str, ...] = get_args(ChangeType)

# idr_meta.config keys and their defaults (written by `idr init`, read by runs).
LARGE_CLUSTER_THRESHOLD = 5000
DRY_RUN_RETENTION_DAYS = 7
DRY_RUN_KEEP_LAST = 0
MAX_CC_ROUNDS = 64
WAREHOUSE_CONFIG_DEFAULTS: dict[str, tuple[str, str]] = {
    "large_cluster_threshold": (str(LARGE_CLUSTER_THRESHOLD), "Clusters above this size are reported as large."),
    "dry_run_retention_days": (str(DRY_RUN_RETENTION_DAYS), "Dry-run results older than this are removed by cleanup."),
    "dry_run_keep_last": (
        str(DRY_RUN_KEEP_LAST),
        "Cleanup keeps at least this many newest dry runs regardless of age.",
    ),
    "max_cc_rounds": (str(MAX_CC_ROUNDS), "Cap on connected-component rounds; hitting it fails the run."),
}
# Optional keys, absent by default (validated, not written by `idr init`).
GOLDEN_ALLOW_EXCLUDED_VALUES = "golden_allow_excluded_values"

# Resolved ids: integers inside, this text where users read them (fixed width, so text
# order is number order).
RESOLVED_ID_PREFIX = "R"
RESOLVED_ID_DIGITS = 11


def format_resolved_id(number: int) -> str:
    return f"{RESOLVED_ID_PREFIX}{number:0{RESOLVED_ID_DIGITS}d}"


def parse_resolved_id(text: str) -> int | None:
    """The number of a resolved id, or None when ``text`` is not one."""
    digits = text[len(RESOLVED_ID_PREFIX) :]
    if not text.startswith(RESOLVED_ID_PREFIX) or len(digits) != RESOLVED_ID_DIGITS or not digits.isdigit():
        return None
    return int(digits)


# Why a run removes an entity (idr_entities_removed{reason}, run_history, the dry-run diff):
# its source flags it deleted, an erasure request, or its key is gone from the source
# (reconcile_deletes, or any FULL run).
RemovalReason = Literal["soft_delete", "erasure", "reconciliation"]
REMOVAL_REASONS: tuple[str, ...] = get_args(RemovalReason)
# Their columns in idr_out.run_history (and keys of a run's counts in the API).
REMOVAL_COLUMNS: dict[str, str] = {reason: f"entities_removed_{reason}" for reason in REMOVAL_REASONS}

# An erasure request: PENDING until a run applies it, APPLIED (in force) while a source
# still holds a row it matched, LIFTED once the sources deleted every such row.
ErasureStatus = Literal["PENDING", "APPLIED", "LIFTED"]

# sources[].reconcile_deletes: never, every_run, or an interval (minutes, hours, days).
RECONCILE_NEVER = "never"
RECONCILE_EVERY_RUN = "every_run"
RECONCILE_PATTERN = r"^(never|every_run|[1-9][0-9]{0,5}[mhd])$"


def reconcile_interval_minutes(value: str) -> int | None:
    """Minutes between reconciliations: 0 = every run, None = never."""
    if value == RECONCILE_NEVER:
        return None
    if value == RECONCILE_EVERY_RUN:
        return 0
    return int(value[:-1]) * {"m": 1, "h": 60, "d": 1440}[value[-1]]
