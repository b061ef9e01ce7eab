"""Benchmark: generate synthetic data, run FULL then INCR, print per-stage figures.

    python bench/run.py --records 100000 [--delta 0.001,0.01] [--full-again] [--check] [--db PATH] [--keep]

Prints figures only; it asserts nothing except with ``--check``, which recomputes the
exact partition independently (SQL over the *source tables* + scipy connected
components, never the engine's edges) and exits non-zero on any difference from
``idr_out.identity_resolved_membership_current``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

# Runnable as a plain script from anywhere, or loaded by path (tests): make the
# repository and the scripts beside this one importable.
REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import machine  # noqa: E402  bench/machine.py

from app.config.model import Canonicalize, IdrConfig, MatchType  # noqa: E402
from app.demo.generator import demo_config, generate, make_delta  # noqa: E402
from app.platforms.base import Adapter  # noqa: E402


# ------------------------------------------------------------------ memory
def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0) so each phase gets its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS since the last reset (VmHWM), else since process start (ru_maxrss)."""
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb / 1024


# ------------------------------------------------------------------ config
def apply_demo_config(adapter: Adapter, doc: dict[str, Any]) -> str:
    """Write ``doc`` into idr_meta: via apply_config when it exists, else directly."""
    try:
        from app.config.apply import apply_config
    except ImportError:
        _insert_config(adapter, doc)
        return "direct insert (app.config.apply not available)"
    apply_config(adapter, doc, actor="bench")
    return "apply_config"


def _insert_config(adapter: Adapter, doc: dict[str, Any]) -> None:
    from app.config.store import TABLES as CONFIG_TABLES

    cfg = IdrConfig.model_validate(doc)
    with adapter.transaction():
        for key, (table, model) in CONFIG_TABLES.items():
            target = adapter.table("idr_meta", table)
            adapter.execute(f"DELETE FROM {target}")
            cols = list(model.model_fields)
            rows = [r.model_dump(mode="json") for r in getattr(cfg, key)]
            if rows:
                adapter.executemany(
                    f"INSERT INTO {target} ({', '.join(adapter.ident(c) for c in cols)}) "
                    f"VALUES ({', '.join('$' + c for c in cols)})",
                    [{c: r[c] for c in cols} for r in rows],
                )
        for k, v in cfg.settings.items():
            adapter.execute("DELETE FROM idr_meta.config WHERE config_key = $k", {"k": k})
            adapter.execute(
                "INSERT INTO idr_meta.config (config_key, config_value, updated_by) VALUES ($k, $v, 'bench')",
                {"k": k, "v": v},
            )


# ------------------------------------------------------------------ independent reference
def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _canon(col: str, mode: Canonicalize) -> str:
    # Written out here on purpose (not imported from the engine): the check must be independent.
    return {
        Canonicalize.NONE: col,
        Canonicalize.LOWERCASE: f"lower({col})",
        Canonicalize.UPPERCASE: f"upper({col})",
        Canonicalize.TRIM: f"trim({col})",
        Canonicalize.EMAIL: f"lower(trim({col}))",
        Canonicalize.PHONE: f"regexp_replace({col}, '[^0-9]', '', 'g')",
    }[Canonicalize(mode)]


@dataclass
class Reference:
    entity_keys: pa.Array  # entity_key per node id
    labels: np.ndarray  # component label per node id
    edges: int
    groups_linked: int
    groups_skipped: int
    values_excluded: int
    seconds: float
    cc_seconds: float = 0.0  # scipy connected_components alone (graph build + labelling)

    @property
    def components(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    @property
    def largest(self) -> int:
        return int(np.bincount(self.labels).max()) if len(self.labels) else 0


def reference_partition(adapter: Adapter, doc: dict[str, Any] | IdrConfig) -> Reference:
    """Exact connected components of the identifier graph, from the source tables.

    Semantics (as DESIGN.md states them): entity_key = '<table_id>:' || key; a source key
    seen twice keeps its newest row; identifier values are canonicalized per rule, NULL
    and '' dropped; exclusions (EXACT / LIKE) match the canonical value; a group
    (identifier_type, value) links its entities only if it has 2..max_group_size
    distinct entities. Every entity is a node, also without identifiers.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t0 = time.perf_counter()
    cfg = doc if isinstance(doc, IdrConfig) else IdrConfig.model_validate(doc)
    rules = {r.identifier_type: r for r in cfg.rules if r.is_active}
    ent_parts, ident_parts, temps = [], [], []
    for i, src in enumerate(s for s in cfg.sources if s.is_active):
        key = f"{_lit(src.table_id + ':')} || CAST(({src.entity_key_expr}) AS VARCHAR)"
        order = f"{src.watermark_column} DESC NULLS LAST" if src.watermark_column else "1"
        maps = [
            m
            for m in cfg.identifier_mappings
            if m.table_id == src.table_id
            and m.identifier_type in rules
            and (not m.is_hashed or rules[m.identifier_type].allow_hashed)
        ]
        cols = [f"{key} AS entity_key"] + [
            f"CAST(({m.identifier_value_expr}) AS VARCHAR) AS v{j}" for j, m in enumerate(maps)
        ]
        latest = f"_bench_src{i}"
        temps.append(latest)
        adapter.execute(
            f"CREATE OR REPLACE TEMP TABLE {latest} AS SELECT {', '.join(cols)} FROM {src.table_fqn} "
            f"WHERE ({src.entity_key_expr}) IS NOT NULL "
            f"QUALIFY row_number() OVER (PARTITION BY entity_key ORDER BY {order}) = 1"
        )
        ent_parts.append(f"SELECT entity_key FROM {latest}")
        for j, m in enumerate(maps):
            norm = _canon(f"v{j}", rules[m.identifier_type].canonicalize)
            ident_parts.append(
                f"SELECT entity_key, {_lit(m.identifier_type)} AS t, {norm} AS v FROM {latest} WHERE v{j} IS NOT NULL"
            )
    excl = pa.table(
        {
            "t": [x.identifier_type for x in cfg.exclusions],
            "p": [x.identifier_value_pattern for x in cfg.exclusions],
            "like": [MatchType(x.match_type) == MatchType.LIKE for x in cfg.exclusions],
        },
        schema=pa.schema([("t", pa.string()), ("p", pa.string()), ("like", pa.bool_())]),
    )
    caps = pa.table(
        {"t": list(rules), "cap": [r.max_group_size for r in rules.values()]},
        schema=pa.schema([("t", pa.string()), ("cap", pa.int64())]),
    )
    adapter.register_arrow("_bench_excl", excl)
    adapter.register_arrow("_bench_caps", caps)
    try:
        adapter.execute(
            "CREATE OR REPLACE TEMP TABLE _bench_ent AS SELECT entity_key, "
            "CAST(row_number() OVER (ORDER BY entity_key) - 1 AS BIGINT) AS id "
            f"FROM (SELECT DISTINCT entity_key FROM ({' UNION ALL '.join(ent_parts)}))"
        )
        union = " UNION ALL ".join(ident_parts) or "SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR"
        adapter.execute(
            "CREATE OR REPLACE TEMP TABLE _bench_ident AS SELECT DISTINCT e.id, i.t, i.v "
            f"FROM ({union}) i JOIN _bench_ent e USING (entity_key) WHERE i.v IS NOT NULL AND i.v <> ''"
        )
        excluded = adapter.scalar(
            "SELECT count(*) FROM _bench_ident i WHERE EXISTS (SELECT 1 FROM _bench_excl x WHERE x.t = i.t "
            'AND ((NOT x."like" AND i.v = x.p) OR (x."like" AND i.v LIKE x.p)))'
        )
        adapter.execute(
            "DELETE FROM _bench_ident i WHERE EXISTS (SELECT 1 FROM _bench_excl x WHERE x.t = i.t "
            'AND ((NOT x."like" AND i.v = x.p) OR (x."like" AND i.v LIKE x.p)))'
        )
        adapter.execute(
            "CREATE OR REPLACE TEMP TABLE _bench_groups AS "
            "SELECT i.t, i.v, count(*) AS n, min(i.id) AS root, any_value(c.cap) AS cap "
            "FROM _bench_ident i JOIN _bench_caps c USING (t) GROUP BY i.t, i.v "
            "HAVING count(*) >= 2"
        )
        linked, skipped = adapter.fetchone(
            "SELECT count(*) FILTER (WHERE n <= cap), count(*) FILTER (WHERE n > cap) FROM _bench_groups"
        ) or (0, 0)
        edges = adapter.arrow(
            "SELECT i.id AS a, g.root AS b FROM _bench_ident i JOIN _bench_groups g USING (t, v) "
            "WHERE g.n <= g.cap AND i.id <> g.root"
        )
        keys = adapter.arrow("SELECT entity_key FROM _bench_ent ORDER BY id").column(0).combine_chunks()
    finally:
        for name in ("_bench_excl", "_bench_caps"):
            with contextlib.suppress(Exception):
                adapter.unregister(name)  # type: ignore[attr-defined]
        for t in ("_bench_ident", "_bench_groups", *temps):
            adapter.execute(f"DROP TABLE IF EXISTS {t}")
    n = len(keys)
    a = edges.column("a").to_numpy()
    b = edges.column("b").to_numpy()
    t_cc = time.perf_counter()
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    cc_seconds = time.perf_counter() - t_cc
    return Reference(
        entity_keys=keys,
        labels=labels.astype(np.int64),
        edges=len(a),
        groups_linked=int(linked),
        groups_skipped=int(skipped),
        values_excluded=int(excluded or 0),
        seconds=time.perf_counter() - t0,
        cc_seconds=cc_seconds,
    )


@dataclass
class CheckResult:
    ok: bool
    lines: list[str]


def compare_with_membership(adapter: Adapter, ref: Reference, examples: int = 5) -> CheckResult:
    """Same set of groups of entity_keys in the reference and in membership_current?"""
    # _bench_ent (entity_key -> node id) was left behind by reference_partition.
    got = adapter.arrow(
        "SELECT e.id, CAST(dense_rank() OVER (ORDER BY m.resolved_id) - 1 AS BIGINT) AS code "
        "FROM _bench_ent e JOIN idr_out.identity_resolved_membership_current m USING (entity_key)"
    )
    extra = adapter.fetchall(
        "SELECT m.entity_key FROM idr_out.identity_resolved_membership_current m "
        "ANTI JOIN _bench_ent e USING (entity_key) LIMIT $n",
        {"n": examples},
    )
    n_extra = adapter.scalar(
        "SELECT count(*) FROM idr_out.identity_resolved_membership_current m ANTI JOIN _bench_ent e USING (entity_key)"
    )
    n = len(ref.labels)
    code = np.full(n, -1, dtype=np.int64)
    code[got.column("id").to_numpy()] = got.column("code").to_numpy()
    lines: list[str] = []
    missing = np.flatnonzero(code < 0)
    if len(missing):
        lines.append(
            f"{len(missing)} source entities missing from membership, e.g. "
            + ", ".join(str(ref.entity_keys[int(i)]) for i in missing[:examples])
        )
    if n_extra:
        sample = ", ".join(r[0] for r in extra)
        lines.append(f"{n_extra} membership entities not in any source, e.g. {sample}")
    present = code >= 0
    lab, cod = ref.labels[present], code[present]
    idx = np.flatnonzero(present)
    # Partitions agree iff the distinct (label, code) pairs are a bijection labels <-> codes.
    width = int(cod.max()) + 1 if len(cod) else 1
    pairs = np.unique(lab * width + cod)
    split_labels = np.flatnonzero(np.bincount(pairs // width) > 1)
    merged_codes = np.flatnonzero(np.bincount(pairs % width) > 1)
    if len(split_labels):
        ex = split_labels[0]
        members = idx[lab == ex][: examples * 2]
        lines.append(
            f"{len(split_labels)} true components are split across several resolved_ids, e.g. "
            + ", ".join(f"{ref.entity_keys[int(i)]}->{int(code[i])}" for i in members)
        )
    if len(merged_codes):
        ex = merged_codes[0]
        members = idx[cod == ex][: examples * 2]
        lines.append(
            f"{len(merged_codes)} resolved_ids merge several true components, e.g. "
            + ", ".join(f"{ref.entity_keys[int(i)]}(component {int(ref.labels[i])})" for i in members)
        )
    adapter.execute("DROP TABLE IF EXISTS _bench_ent")
    ok = not lines
    if ok:
        lines.append(f"partition identical: {n:,} entities in {ref.components:,} clusters")
    return CheckResult(ok=ok, lines=lines)


def run_check(adapter: Adapter, doc: dict[str, Any], result: Any = None) -> bool:
    """Compare with the reference partition; with the run's ``result``, also compare its
    components stage with scipy's union-find on the same star edges."""
    ref = reference_partition(adapter, doc)
    res = compare_with_membership(adapter, ref)
    print(
        f"  check: reference {len(ref.labels):,} entities, {ref.components:,} components "
        f"(largest {ref.largest:,}), {ref.edges:,} star edges, {ref.groups_linked:,} groups linked, "
        f"{ref.groups_skipped:,} skipped > max_group_size, {ref.values_excluded:,} values excluded "
        f"[{ref.seconds:.1f}s]"
    )
    for line in res.lines:
        print(("  OK    " if res.ok else "  DIFF  ") + line)
    stage = next((st for st in getattr(result, "stages", []) or [] if st.name == "components"), None)
    if stage is not None and ref.cc_seconds > 0:
        print(
            f"  components stage {stage.seconds:.2f} s vs scipy connected_components alone on the same "
            f"{ref.edges:,} edges {ref.cc_seconds:.2f} s = {stage.seconds / ref.cc_seconds:.1f}x"
        )
    return res.ok


# ------------------------------------------------------------------ runs
def _load_runner() -> Callable[..., Any] | None:
    try:
        from app.pipeline.runner import run_pipeline
    except ImportError as e:
        print(f"\nrun_pipeline is not available yet ({e}); generated data and config only.")
        return None
    return run_pipeline


def _fmt_int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else ("" if v is None else str(v))


def _kernel_seconds() -> float:
    """System CPU time of this process so far (all threads): page faults on fresh memory
    show up here, which on some VMs cost more than the work itself (see bench/README)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def print_run(
    label: str,
    result: Any,
    wall: float,
    peak_mb: float,
    stage_peaks: dict[str, float],
    stage_kernel: dict[str, float],
    kernel: float,
) -> None:
    print(f"\n== {label}: status {getattr(result, 'status', '?')}")
    stages = list(getattr(result, "stages", []) or [])
    w = max([len("stage")] + [len(s.name) for s in stages])
    print(f"  {'stage':<{w}}  {'seconds':>9}  {'rows_in':>13}  {'rows_out':>13}  {'peak RSS MB':>11}  {'kernel s':>8}")
    for s in stages:
        peak = stage_peaks.get(s.name)
        sys_s = stage_kernel.get(s.name)
        print(
            f"  {s.name:<{w}}  {s.seconds:>9.2f}  {_fmt_int(s.rows_in):>13}  {_fmt_int(s.rows_out):>13}  "
            f"{'' if peak is None else f'{peak:,.0f}':>11}  {'' if sys_s is None else f'{sys_s:.2f}':>8}"
        )
    print(f"  {'(stages total)':<{w}}  {sum(s.seconds for s in stages):>9.2f}")
    print(f"  wall seconds      {wall:.2f}")
    print(f"  peak RSS MB       {peak_mb:,.0f}")
    print(f"  kernel CPU s      {kernel:.2f}  (system time of all threads)")
    for attr in (
        "lp_iterations",
        "entities_processed",
        "edges_created",
        "edges_updated",
        "edges_removed",
        "clusters_impacted",
        "groups_skipped",
        "values_excluded",
        "large_clusters",
    ):
        if hasattr(result, attr):
            print(f"  {attr:<17} {_fmt_int(getattr(result, attr))}")
    for warning in getattr(result, "warnings", []) or []:
        print(f"  warning: {warning}")
    if getattr(result, "error_message", None):
        print(f"  error in {getattr(result, 'error_stage', '?')}: {result.error_message}")


def timed_run(
    run_pipeline: Callable[..., Any], adapter: Adapter, mode: str, verbose: bool, dry_run: bool = False
) -> tuple[Any, bool, float]:
    stage_peaks: dict[str, float] = {}
    kernel_at_start: dict[str, float] = {}
    stage_kernel: dict[str, float] = {}
    run_peak = 0.0

    def progress(stage: str, event: str) -> None:
        nonlocal run_peak
        # Peak RSS per stage: reset the kernel's high-water mark as each stage starts.
        if event == "start":
            run_peak = max(run_peak, peak_rss_mb())
            reset_peak_rss()
            kernel_at_start[stage] = _kernel_seconds()
        else:
            stage_peaks[stage] = peak_rss_mb()
            stage_kernel[stage] = _kernel_seconds() - kernel_at_start[stage]
        if verbose:
            print(f"    [{time.strftime('%H:%M:%S')}] {stage} {event}", flush=True)

    # DuckDB defers part of writing a large commit to a later checkpoint: checkpoint
    # before the clock starts (the delta's writes are not the run's) and again before it
    # stops, so each run pays for its own writes and nobody else's.
    adapter.execute("CHECKPOINT")
    reset_peak_rss()
    k0 = _kernel_seconds()
    t0 = time.perf_counter()
    result = run_pipeline(adapter, mode=mode, dry_run=dry_run, progress=progress)
    t1 = time.perf_counter()
    adapter.execute("CHECKPOINT")
    wall = time.perf_counter() - t0
    run_peak = max([run_peak, peak_rss_mb(), *stage_peaks.values()])
    kernel = _kernel_seconds() - k0
    print_run(f"{mode} dry run" if dry_run else mode, result, wall, run_peak, stage_peaks, stage_kernel, kernel)
    print(f"  (wall includes a final CHECKPOINT: {wall - (t1 - t0):.2f} s)")
    ok = bool(getattr(result, "ok", getattr(result, "status", "") in ("SUCCESS", "SUCCESS_WITH_WARNINGS")))
    return result, ok, wall


def measured(run_pipeline, adapter, mode: str, verbose: bool, dry_ratio: bool) -> tuple[bool, Any]:
    """A real run; with ``dry_ratio`` first the same run as a dry run (zero impact, so
    both start from the same state) and the ratio of their wall times."""
    dry_wall = None
    if dry_ratio:
        dry_result, dry_ok, dry_wall = timed_run(run_pipeline, adapter, mode, verbose, dry_run=True)
        if not dry_ok:
            return False, dry_result
    result, ok, wall = timed_run(run_pipeline, adapter, mode, verbose)
    if dry_wall is not None:
        print(f"  dry run / real run ({mode}): {dry_wall:.2f} s / {wall:.2f} s = {dry_wall / wall:.2f}x")
    return ok, result


def _remove_db(path: Path) -> None:
    for p in (path, Path(f"{path}.wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    shutil.rmtree(f"{path}.tmp", ignore_errors=True)


def _fractions(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--delta: {text!r} is not a comma-separated list of fractions") from e
    if any(not 0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--delta: every fraction must be in [0, 1), got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="records to generate (default 100000)")
    ap.add_argument(
        "--delta",
        type=_fractions,
        default=[0.01],
        help="fraction(s) changed before each INCR, comma-separated, run in order (default 0.01); 0 = no INCR",
    )
    ap.add_argument("--check", action="store_true", help="verify the partition independently")
    ap.add_argument("--db", type=Path, default=None, help="DuckDB file (default: temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the db afterwards; reuse it if it exists")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-group-size", type=int, default=None, help="default: scales with --records")
    ap.add_argument("--verbose", action="store_true", help="print stage start/end as they happen")
    ap.add_argument(
        "--dry-run-ratio", action="store_true", help="run each mode as a dry run first and print dry/real time"
    )
    ap.add_argument(
        "--full-again",
        action="store_true",
        help="end with a FULL run over the state the runs before left (the daily re-derivation)",
    )
    args = ap.parse_args(argv)

    db: Path = args.db or Path(tempfile.gettempdir()) / f"idr_bench_{args.records}.duckdb"
    reuse = args.keep and db.exists()
    if not reuse:
        _remove_db(db)
    from app.platforms.duckdb import DuckDBAdapter
    from app.schema import init_schema

    print(f"idr benchmark: records={args.records:,} delta={args.delta} db={db} pid={os.getpid()}")
    print(machine.measure().line())  # before and after: figures are only comparable with it
    adapter = DuckDBAdapter.from_path(str(db))
    ok = True
    try:
        if reuse:
            print("reusing existing data (--keep)")
        else:
            reset_peak_rss()
            stats = generate(adapter, args.records, seed=args.seed)
            print(
                f"generated {stats['records']:,} records in {stats['seconds']:.1f}s "
                f"(peak RSS {peak_rss_mb():,.0f} MB): crm {stats['rows_crm_customers']:,}, "
                f"shop {stats['rows_shop_orders']:,}, loyalty {stats['rows_loyalty_members']:,}; "
                f"{stats['people']:,} people, {stats['chains']:,} chains (longest {stats['longest_chain']}), "
                f"junk groups of {stats['junk_group_size']:,}"
            )
        init_schema(adapter)
        doc = demo_config(max_group_size=args.max_group_size, records=args.records)
        how = apply_demo_config(adapter, doc)
        print(f"config applied ({how}); max_group_size={doc['rules'][0]['max_group_size']}")

        run_pipeline = _load_runner()
        if run_pipeline is None:
            return 2
        run_ok, result = measured(run_pipeline, adapter, "FULL", args.verbose, args.dry_run_ratio)
        ok &= run_ok
        if args.check and run_ok:
            ok &= run_check(adapter, doc, result)
        for k, fraction in enumerate(args.delta):
            if not (fraction > 0 and run_ok):
                break
            d = make_delta(adapter, fraction, seed=args.seed + 1 + k)
            print(
                f"\ndelta: {d['changed']:,} records changed in {d['seconds']:.1f}s "
                f"(new {d['new_fresh']:,}, joining {d['new_joining']:,}, bridging {d['new_bridging']:,}, "
                f"identifiers changed {d['updated_identifiers']:,}, attributes {d['updated_attributes']:,})"
            )
            run_ok, _ = measured(run_pipeline, adapter, "INCR", args.verbose, args.dry_run_ratio)
            ok &= run_ok
            if args.check and run_ok:
                ok &= run_check(adapter, doc)
        if args.full_again and ok:
            # FULL over an existing state also matches every stored id and edge: what a
            # scheduled re-derivation costs, unlike the first FULL on an empty state.
            print("\nFULL again, over the state the runs above left:")
            run_ok, result = measured(run_pipeline, adapter, "FULL", args.verbose, args.dry_run_ratio)
            ok &= run_ok
            if args.check and run_ok:
                ok &= run_check(adapter, doc, result)
    finally:
        adapter.close()
        if not args.keep:
            _remove_db(db)
    print("\n" + machine.measure().line())
    print("result: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
