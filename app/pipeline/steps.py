"""The pipeline's steps, in order: what each reads and writes, and in which runs.

``plan_for(kind)`` picks the steps of one kind of run (FULL / INCR, first run, real /
dry / apply); the runner executes that plan. Scratch-table names are those of the SQL
(``{{w.name}}``); ``sources`` stands for the per-source tables extraction reads.
"""

from __future__ import annotations

from collections.abc import Callable

from app.pipeline import dryrun, erasure, extract, golden, graph, publish, resolve
from app.pipeline.context import RunContext
from app.pipeline.plan import (
    ALL,
    APPLY,
    DRY,
    FRESH,
    FULL,
    INCR,
    REAL,
    STORED,
    Plan,
    RunKind,
    Step,
    both,
    make_plan,
)


def _keys_full(ctx: RunContext) -> None:
    ctx.exec(f"CREATE VIEW {ctx.w('keys')} AS SELECT eid, entity_key FROM {ctx.w('entities')}")


def _keys_incr(ctx: RunContext) -> None:
    ctx.exec(f"CREATE VIEW {ctx.w('keys')} AS SELECT eid, entity_key FROM {ctx.w('scope_keys')}")


def _next_vid(ctx: RunContext) -> dict[str, int]:
    return {"next_vid": ctx.state.next_vid}


def _has_attributes(ctx: RunContext) -> bool:
    return bool(ctx.config.attribute_mappings)


def _has_broken(ctx: RunContext) -> bool:
    return ctx.count(ctx.w("broken")) > 0


def _apply_check(ctx: RunContext) -> None:
    dryrun.verify_proposal(ctx, ctx.state.apply_of or "", ctx.state.expected_fingerprint)


def _prepare(ctx: RunContext) -> None:
    publish.prepare(ctx)


def _diff_or_apply(k: RunKind) -> bool:
    return k.dry_run or k.apply


S = Step
STEPS: tuple[Step, ...] = (
    # ------------------------------------------------------------------ extract_entities
    S("read_sources", "extract_entities", outputs=("sources",), build=extract.read_sources),
    S(
        "deletions",
        "extract_entities",
        ("sources",),
        ("gone", "gone_erasure", "erasure_keys", "erasure_hold"),
        build=extract.deletions,
    ),
    S(
        "entity_ids",
        "extract_entities",
        ("sources",),
        ("ent_ids",),
        views=("ent_ids",),
        runs_in=FRESH,
        build=extract.entity_ids,
    ),
    S("entity_ids", "extract_entities", ("sources",), ("ent_ids",), runs_in=STORED, build=extract.entity_ids),
    S(
        "entity_rows",
        "extract_entities",
        ("sources", "ent_ids"),
        ("entities",),
        views=("entities",),
        runs_in=STORED,
        build=extract.entity_rows,
    ),
    S(
        "entity_rows",
        "extract_entities",
        ("sources",),
        ("entities",),
        views=("entities",),
        runs_in=FRESH,
        build=extract.entity_rows,
    ),
    # ------------------------------------------------------------------ identifiers
    S("identifier_rows", "identifiers", ("entities",), ("ident_raw",), build=extract.identifier_rows),
    S(
        "exclusions",
        "identifiers",
        ("ident_raw",),
        ("excl_exact", "identifiers"),
        views=("identifiers",),
        build=graph.exclusions,
    ),
    # ------------------------------------------------------------------ group_guard
    S("rules", "group_guard", outputs=("rules",), build=graph.rules_table),
    S("key_rank", "group_guard", ("entities",), ("key_rank",), runs_in=both(FULL, STORED), build=graph.key_rank),
    S(
        "group_rows",
        "group_guard",
        ("identifiers", "key_rank"),
        ("grp_rows",),
        runs_in=both(FULL, STORED),
        build=graph.group_rows,
    ),
    S("group_rows", "group_guard", ("identifiers",), ("grp_rows",), runs_in=FRESH, build=graph.group_rows),
    S(
        "values",
        "group_guard",
        ("grp_rows", "rules"),
        ("values_new",),
        runs_in=both(FULL, STORED),
        sql="graph.full_values",
        params=_next_vid,
    ),
    S(
        "values",
        "group_guard",
        ("grp_rows", "rules"),
        ("values_new",),
        runs_in=FRESH,
        sql="graph.fresh_values",
        params=_next_vid,
    ),
    S(
        "holders",
        "group_guard",
        ("grp_rows", "values_new"),
        ("holders_new",),
        runs_in=both(FULL, STORED),
        sql="graph.full_holders",
    ),
    S(
        "holders",
        "group_guard",
        ("grp_rows",),
        ("holders_new",),
        runs_in=FRESH,
        sql="graph.fresh_holders",
        params=_next_vid,
    ),
    S("keys", "group_guard", ("entities",), ("keys",), views=("keys",), runs_in=FULL, build=_keys_full),
    S(
        "delta_values",
        "group_guard",
        ("identifiers",),
        ("delta_values",),
        runs_in=INCR,
        sql="graph.incr_delta_values",
        params=_next_vid,
    ),
    S(
        "new_ident",
        "group_guard",
        ("identifiers", "delta_values"),
        ("new_ident",),
        runs_in=INCR,
        sql="graph.incr_new_ident",
    ),
    S("dropped", "group_guard", ("gone",), ("dropped",), runs_in=INCR, sql="graph.incr_dropped"),
    S(
        "old_ident",
        "group_guard",
        ("ent_ids", "dropped"),
        ("old_ident",),
        runs_in=INCR,
        sql="graph.incr_old_ident",
    ),
    S("lost", "group_guard", ("old_ident", "new_ident"), ("lost",), runs_in=INCR, sql="graph.incr_lost"),
    S("gained", "group_guard", ("old_ident", "new_ident"), ("gained",), runs_in=INCR, sql="graph.incr_gained"),
    S("vals", "group_guard", ("lost", "gained"), ("vals",), runs_in=INCR, sql="graph.incr_vals"),
    S("values_old", "group_guard", ("vals",), ("values_old",), runs_in=INCR, sql="graph.incr_values_old"),
    S("members_old", "group_guard", ("values_old",), ("members_old",), runs_in=INCR, sql="graph.incr_members_old"),
    S(
        "members",
        "group_guard",
        ("members_old", "lost", "gained"),
        ("members",),
        runs_in=INCR,
        sql="graph.incr_members",
    ),
    S(
        "touched",
        "group_guard",
        ("members_old", "ent_ids", "dropped"),
        ("touched",),
        runs_in=INCR,
        sql="graph.incr_touched",
    ),
    S(
        "scope",
        "group_guard",
        ("touched", "ent_ids", "dropped"),
        ("scope_keys",),
        runs_in=INCR,
        sql="graph.incr_scope",
    ),
    S(
        "values",
        "group_guard",
        ("members", "scope_keys", "values_old", "delta_values", "rules"),
        ("values_new",),
        runs_in=INCR,
        sql="graph.incr_values",
    ),
    S("holders", "group_guard", ("members", "values_new"), ("holders_new",), runs_in=INCR, sql="graph.incr_holders"),
    S("keys", "group_guard", ("scope_keys",), ("keys",), views=("keys",), runs_in=INCR, build=_keys_incr),
    S(
        "skipped_members",
        "group_guard",
        ("values_new", "holders_new", "rules"),
        ("skipped_members",),
        sql="graph.skipped_members",
    ),
    S("skipped", "group_guard", ("skipped_members", "keys"), ("skipped",), sql="graph.skipped"),
    S("group_counts", "group_guard", ("skipped", "values_new"), build=graph.group_counts),
    # ------------------------------------------------------------------ edges
    S(
        "edges",
        "edges",
        ("holders_new", "values_new"),
        ("edges_new",),
        runs_in=both(FULL, STORED),
        sql="graph.full_edges_new",
    ),
    S(
        "edges",
        "edges",
        ("grp_rows", "rules"),
        ("edges_new",),
        runs_in=FRESH,
        sql="graph.fresh_edges_new",
        params=_next_vid,
    ),
    S(
        "edges",
        "edges",
        ("holders_new", "values_new", "values_old"),
        ("edges_new",),
        runs_in=INCR,
        sql="graph.incr_edges_new",
    ),
    S("edge_counts", "edges", ("edges_new", "values_new"), runs_in=FULL, build=graph.edge_counts),
    S(
        "edge_counts",
        "edges",
        ("edges_new", "values_new", "values_old", "rules"),
        runs_in=INCR,
        build=graph.edge_counts,
    ),
    # ------------------------------------------------------------------ components
    S(
        "cc_edges",
        "components",
        ("edges_new",),
        ("cc_edges",),
        views=("cc_edges",),
        runs_in=FULL,
        sql="graph.full_cc_edges",
    ),
    S(
        "broken",
        "components",
        ("touched", "lost", "members_old", "values_old", "values_new", "dropped"),
        ("broken",),
        runs_in=INCR,
        sql="graph.incr_broken",
    ),
    S("nodes", "components", ("scope_keys", "broken"), ("nodes",), runs_in=INCR, sql="graph.incr_nodes"),
    S("cc_edges", "components", ("edges_new", "nodes"), ("cc_edges",), runs_in=INCR, sql="graph.incr_cc_edges"),
    S(
        "cc_edges_kept",
        "components",
        ("cc_edges", "nodes", "vals", "broken"),
        runs_in=INCR,
        sql="graph.incr_cc_edges_kept",
        when=_has_broken,
        doc="only clusters that may split keep their stored links (a delta that only adds breaks none)",
    ),
    S("components", "components", ("cc_edges",), ("cc_labels",), runs_in=FULL, build=graph.connected_components),
    S(
        "components",
        "components",
        ("cc_edges", "nodes"),
        ("cc_labels",),
        runs_in=INCR,
        build=graph.connected_components,
    ),
    # ------------------------------------------------------------------ resolve_ids
    S(
        "proposed",
        "resolve_ids",
        ("ent_ids", "key_rank", "cc_labels"),
        ("proposed",),
        runs_in=both(FULL, STORED),
        sql="resolve.full_proposed",
    ),
    S("proposed", "resolve_ids", ("ent_ids", "cc_labels"), ("proposed",), runs_in=FRESH, sql="resolve.fresh_proposed"),
    S(
        "proposed",
        "resolve_ids",
        ("scope_keys", "nodes", "cc_labels"),
        ("proposed",),
        runs_in=INCR,
        sql="resolve.incr_proposed",
    ),
    S("comps", "resolve_ids", ("proposed",), ("comps",), sql="resolve.comps"),
    S("overlap", "resolve_ids", ("proposed",), ("overlap",), sql="resolve.overlap"),
    S("keep", "resolve_ids", ("overlap", "comps"), ("keep",), sql="resolve.keep"),
    S("comp_ids", "resolve_ids", ("comps", "keep"), ("comp_ids",), build=resolve.comp_ids),
    S("membership", "resolve_ids", ("proposed", "comp_ids"), ("membership",), sql="resolve.membership"),
    S("removed", "resolve_ids", ("ent_ids", "gone"), ("removed",), runs_in=FULL, sql="resolve.full_removed"),
    S("removed", "resolve_ids", ("dropped",), ("removed",), runs_in=INCR, sql="resolve.incr_removed"),
    S("removal_counts", "resolve_ids", ("removed", "gone_erasure"), build=resolve.removal_counts),
    S("erasure_lifts", "resolve_ids", ("erasure_keys", "erasure_hold"), build=erasure.lifts),
    S("changed_rids", "resolve_ids", ("membership", "removed"), ("changed_rids",), sql="resolve.changed_rids"),
    S(
        "cluster_links",
        "resolve_ids",
        ("values_new", "proposed"),
        ("cluster_links",),
        runs_in=FULL,
        sql="resolve.full_cluster_links",
    ),
    S(
        "cluster_links",
        "resolve_ids",
        ("values_new", "proposed", "vals"),
        ("cluster_links",),
        runs_in=INCR,
        sql="resolve.incr_cluster_links",
    ),
    S("clusters_new", "resolve_ids", ("comp_ids", "cluster_links"), ("clusters_new",), build=resolve.clusters_new),
    S(
        "resolve_counts",
        "resolve_ids",
        ("proposed", "comp_ids", "changed_rids", "clusters_new"),
        build=resolve.resolve_counts,
    ),
    # ------------------------------------------------------------------ the diff's keys
    S(
        "diff_keys",
        "resolve_ids",
        ("ent_ids", "removed"),
        ("diff_keys",),
        views=("diff_keys",),
        runs_in=both(FULL, _diff_or_apply),
        sql="dryrun.full_diff_keys",
    ),
    S(
        "diff_keys",
        "resolve_ids",
        ("scope_keys", "removed"),
        ("diff_keys",),
        views=("diff_keys",),
        runs_in=both(INCR, _diff_or_apply),
        sql="dryrun.incr_diff_keys",
    ),
    # ------------------------------------------------------------------ golden_profile (real runs)
    S(
        "golden_rows",
        "golden_profile",
        ("entities", "proposed", "comp_ids", "excl_exact"),
        ("gsrc", "golden_single"),
        runs_in=both(FULL, REAL),
        build=golden.scope_rows,
        when=_has_attributes,
        doc="attributes are configured",
    ),
    S(
        "golden_rows",
        "golden_profile",
        ("entities", "proposed", "excl_exact", "scope_keys", "ent_ids"),
        ("gsrc",),
        runs_in=both(INCR, REAL),
        build=golden.scope_rows,
        when=_has_attributes,
        doc="attributes are configured",
    ),
    S("golden_build", "golden_profile", ("gsrc", "comp_ids"), ("golden_new",), runs_in=REAL, build=golden.build),
    # ------------------------------------------------------------------ apply_check (apply runs)
    S("apply_check", "apply_check", ("membership", "removed", "diff_keys"), runs_in=APPLY, build=_apply_check),
    # ------------------------------------------------------------------ dry_run_diff (dry runs)
    S("flows", "dry_run_diff", ("membership", "removed"), ("flows",), runs_in=DRY, sql="dryrun.flows"),
    S("split_old", "dry_run_diff", ("flows",), ("split_old",), runs_in=DRY, sql="dryrun.split_old"),
    S("merged_new", "dry_run_diff", ("flows",), ("merged_new",), runs_in=DRY, sql="dryrun.merged_new"),
    S(
        "results",
        "dry_run_diff",
        ("membership", "diff_keys", "split_old", "merged_new", "removed"),
        ("results",),
        runs_in=DRY,
        sql="dryrun.results_build",
    ),
    S(
        "write_diff",
        "dry_run_diff",
        ("results", "flows", "split_old", "merged_new", "comp_ids", "changed_rids", "skipped", "membership"),
        runs_in=DRY,
        build=dryrun.write_diff,
    ),
    # ------------------------------------------------------------------ publish (real runs)
    S(
        "entity_changes",
        "publish",
        ("membership", "removed", "ent_ids"),
        ("entity_changes",),
        runs_in=both(FULL, STORED, REAL),
        sql="publish.full_entity_changes",
    ),
    S(
        "entity_changes",
        "publish",
        ("membership", "scope_keys", "removed"),
        ("entity_changes",),
        runs_in=both(INCR, REAL),
        sql="publish.incr_entity_changes",
    ),
    S("publish_prepare", "publish", ("membership", "values_new"), runs_in=REAL, build=_prepare),
)

# Tables the publish transaction reads, per kind of run.
PUBLISH_INPUTS_FULL = (
    "rules",
    "entities",
    "membership",
    "values_new",
    "holders_new",
    "edges_new",
    "clusters_new",
    "golden_new",
    "golden_single",
    "comp_ids",
    "changed_rids",
    "skipped",
    "removed",
    "ent_ids",
    "erasure_keys",
    "erasure_hold",
)
PUBLISH_INPUTS_INCR = (
    "rules",
    "entity_changes",
    "vals",
    "values_new",
    "holders_new",
    "edges_new",
    "clusters_new",
    "golden_new",
    "comp_ids",
    "changed_rids",
    "skipped",
    "membership",
    "erasure_keys",
    "erasure_hold",
)


def plan_for(kind: RunKind, publish_build: Callable[[RunContext], None] | None = None) -> Plan:
    """The plan of one kind of run; ``publish_build`` is the publish step's work (the
    runner's: it also finalizes the run's history row inside the transaction)."""
    steps = list(STEPS)
    if not kind.dry_run:
        inputs = PUBLISH_INPUTS_FULL if kind.full else PUBLISH_INPUTS_INCR
        if kind.full and not kind.fresh:
            inputs = (*inputs, "entity_changes")
        steps.append(S("publish", "publish", inputs, runs_in=REAL, build=publish_build or _publish_placeholder))
    return make_plan(kind, steps)


def _publish_placeholder(ctx: RunContext) -> None:
    """publish.publish inside one transaction, with the run's history row."""
    raise RuntimeError("the runner supplies the publish step")


__all__ = ["ALL", "STEPS", "plan_for"]
