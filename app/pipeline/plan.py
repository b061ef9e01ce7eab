"""The pipeline as a declared plan of steps.

Each step names the scratch tables it reads and writes, the stage it belongs to and the
runs it takes part in (FULL / INCR, real / dry / apply). The runner derives from the
plan the order of the steps, the progress (``stages_total``) and when each scratch table
is dropped: right after its last reader, because what stays alive decides whether a
large run spills. ``idr plan`` prints it: the answer to "what reads this table?".

A step's work is a named statement (``sql/stages/<file>.sql``) or one builder function;
builders may use tables of their own (loop tables of the component rounds, per-source
tables), which they drop themselves and never hand to another step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.pipeline.context import RunContext

# Stage names, in order: stage_metrics rows, progress and the README speak of these.
STAGES: tuple[str, ...] = (
    "extract_entities",
    "identifiers",
    "group_guard",
    "edges",
    "components",
    "resolve_ids",
    "golden_profile",
    "apply_check",
    "dry_run_diff",
    "publish",
)


@dataclass(frozen=True)
class RunKind:
    """Which run a plan is for."""

    full: bool
    dry_run: bool = False
    apply: bool = False
    # FULL over an empty state: every record is new, numbered by its place in its source.
    fresh: bool = False

    @property
    def mode(self) -> str:
        return "FULL" if self.full else "INCR"

    def label(self) -> str:
        first = " (first run)" if self.fresh else ""
        return self.mode + first + (" dry run" if self.dry_run else " apply" if self.apply else "")


def ALL(k: RunKind) -> bool:  # noqa: N802 - reads as a constant in step tables
    return True


def FULL(k: RunKind) -> bool:  # noqa: N802
    return k.full


def INCR(k: RunKind) -> bool:  # noqa: N802
    return not k.full


def REAL(k: RunKind) -> bool:  # noqa: N802
    return not k.dry_run


def DRY(k: RunKind) -> bool:  # noqa: N802
    return k.dry_run


def FRESH(k: RunKind) -> bool:  # noqa: N802
    return k.fresh


def STORED(k: RunKind) -> bool:  # noqa: N802 - a FULL run over a stored state, or INCR
    return not k.fresh


def APPLY(k: RunKind) -> bool:  # noqa: N802
    return k.apply


def both(*preds: Callable[[RunKind], bool]) -> Callable[[RunKind], bool]:
    return lambda k: all(p(k) for p in preds)


@dataclass(frozen=True)
class Step:
    name: str
    stage: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    # Outputs that are views over the inputs: the inputs then live as long as the view.
    views: tuple[str, ...] = ()
    runs_in: Callable[[RunKind], bool] = ALL
    # ``file.statement`` under sql/stages, or a builder; exactly one.
    sql: str | None = None
    build: Callable[[RunContext], None] | None = None
    # The named statement's $parameters, from the run's state.
    params: Callable[[RunContext], dict[str, Any]] | None = None
    # Skipped at run time when false (documented in ``doc``); its outputs must then not be read.
    when: Callable[[RunContext], bool] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if (self.sql is None) == (self.build is None):
            raise ValueError(f"step {self.name}: exactly one of sql / build")
        if self.stage not in STAGES:
            raise ValueError(f"step {self.name}: unknown stage {self.stage}")


@dataclass
class Plan:
    kind: RunKind
    steps: list[Step]
    # table -> index of the step after which it is dropped (its last reader, or its writer
    # when nothing reads it).
    drop_after: dict[str, int] = field(default_factory=dict)

    @property
    def stages(self) -> list[str]:
        seen: list[str] = []
        for s in self.steps:
            if s.stage not in seen:
                seen.append(s.stage)
        return seen

    def drops(self, index: int) -> list[str]:
        return sorted(t for t, i in self.drop_after.items() if i == index)

    def is_view(self, table: str) -> bool:
        return any(table in s.views for s in self.steps)

    def readers(self, table: str) -> list[str]:
        return [s.name for s in self.steps if table in s.inputs]

    def render(self) -> str:
        """Human-readable plan (``idr plan``)."""
        lines = [f"plan: {self.kind.label()} · {len(self.steps)} steps in {len(self.stages)} stages"]
        stage = None
        for i, s in enumerate(self.steps):
            if s.stage != stage:
                stage = s.stage
                lines.append(f"\n[{stage}]")
            what = s.sql or f"{s.build.__module__.rsplit('.', 1)[-1]}.{s.build.__name__}"  # type: ignore[union-attr]
            lines.append(f"  {s.name}  ({what})")
            if s.inputs:
                lines.append(f"      reads:   {', '.join(s.inputs)}")
            if s.outputs:
                lines.append(f"      writes:  {', '.join(s.outputs)}")
            if s.when is not None:
                lines.append(f"      when:    {s.doc or s.when.__name__}")
            drops = self.drops(i)
            if drops:
                lines.append(f"      then drops: {', '.join(drops)}")
        return "\n".join(lines)


def make_plan(kind: RunKind, steps: Iterable[Step]) -> Plan:
    chosen = [s for s in steps if s.runs_in(kind)]
    names = [s.name for s in chosen]
    if len(names) != len(set(names)):
        raise ValueError("duplicate step names")
    writer: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, s in enumerate(chosen):
        for t in s.inputs:
            if t not in writer:
                raise ValueError(f"step {s.name} reads {t}, which no earlier step of a {kind.label()} writes")
            last[t] = i
        for t in s.outputs:
            if t in writer:
                raise ValueError(f"{t} is written twice ({chosen[writer[t]].name}, {s.name})")
            writer[t] = i
    drop_after = {t: max(last.get(t, i), i) for t, i in writer.items()}
    # A view's inputs stay until the view goes (views of views: repeat until stable).
    changed = True
    while changed:
        changed = False
        for s in chosen:
            for v in s.views:
                for t in s.inputs:
                    if drop_after[t] < drop_after[v]:
                        drop_after[t] = drop_after[v]
                        changed = True
    return Plan(kind=kind, steps=chosen, drop_after=drop_after)
