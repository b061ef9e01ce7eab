"""Named warehouse targets: one pydantic model per platform, found through entry points.

A target model is registered under the entry-point group ``idr.targets`` (``pyproject.toml``)
with its ``platform`` as the name, so a package can add a platform without forking::

    [project.entry-points."idr.targets"]
    oracle = "mypkg.oracle:OracleTarget"

Settings parse each ``IDR_TARGETS__<NAME>__...`` entry as the discriminated union (on
``platform``) of the registered models. A model forbids fields it does not know, so a typo
or another platform's field is refused naming that field, instead of being ignored.

This module holds only the base class and the registry (``app.core.settings`` needs them
and must not import the adapters); the built-in models live in ``app.platforms.targets``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

if TYPE_CHECKING:
    from app.core.settings import Settings
    from app.platforms.base import Adapter

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "idr.targets"

# What pyproject registers (tests/platforms/test_targets.py keeps the two equal). Used as
# well when the installed metadata predates the group (an editable install not reinstalled).
BUILTIN_TARGETS = {
    "duckdb": "app.platforms.targets:DuckDBTarget",
    "snowflake": "app.platforms.targets:SnowflakeTarget",
    "bigquery": "app.platforms.targets:BigQueryTarget",
    "databricks": "app.platforms.targets:DatabricksTarget",
    "spark": "app.platforms.targets:SparkTarget",
}


class TargetModel(BaseModel):
    """One named warehouse. Subclasses narrow ``platform`` to a ``Literal`` of their name
    and build their adapter; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    platform: str

    def build_adapter(self, settings: Settings) -> Adapter:
        """An adapter holding a connection factory (nothing opened yet)."""
        raise NotImplementedError(f"{type(self).__name__} does not build an adapter")

    def duckdb_file(self, settings: Settings) -> str | None:
        """The DuckDB file this target opens (the service's one-process lock); None elsewhere."""
        return None


def _load(name: str, value: Any) -> type[TargetModel] | None:
    try:
        if hasattr(value, "load"):  # an entry point
            cls = value.load()
        else:  # a built-in's "module:Class"
            module, attr = value.split(":")
            cls = getattr(import_module(module), attr)
    except Exception as e:  # noqa: BLE001 - a broken third-party plugin must not break the other platforms
        log.warning("target platform %r could not be loaded: %s", name, e)
        return None
    fields = getattr(cls, "model_fields", {})
    if not (isinstance(cls, type) and issubclass(cls, TargetModel)) or "platform" not in fields:
        log.warning("entry point %r (%s) is not a TargetModel subclass; ignored", name, ENTRY_POINT_GROUP)
        return None
    tags = getattr(fields["platform"].annotation, "__args__", ())
    if tuple(tags) != (name,):
        log.warning("entry point %r: its model's platform is %s, not Literal[%r]; ignored", name, tags, name)
        return None
    return cls


@lru_cache
def target_models() -> dict[str, type[TargetModel]]:
    """Platform name -> target model, from the entry points (built-ins if the metadata lacks them)."""
    found: dict[str, Any] = dict(BUILTIN_TARGETS)
    found.update({ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)})
    models = {name: cls for name, value in sorted(found.items()) if (cls := _load(name, value)) is not None}
    return models


@lru_cache
def _union() -> TypeAdapter[Any]:
    models = tuple(target_models().values())
    return TypeAdapter(Annotated[Union[models], Field(discriminator="platform")])  # noqa: UP007 - a runtime tuple


def _where(loc: tuple[Any, ...]) -> str:
    # loc is (platform tag, field, ...) for a field error, () for the tag itself
    return ".".join(str(p) for p in loc[1:])


def parse_target(name: str, value: Any) -> TargetModel:
    """One target's settings as its platform's model; ``ValueError`` naming the target and
    the field (unknown platform, unknown field, wrong value)."""
    if isinstance(value, TargetModel):
        return value
    platforms = ", ".join(target_models())
    if isinstance(value, dict) and not value.get("platform"):
        raise ValueError(f"target {name!r}: platform is required (one of: {platforms})")
    try:
        return _union().validate_python(value)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            kind, field = err["type"], _where(tuple(err["loc"]))
            if kind == "union_tag_invalid":
                problems.append(f"unknown platform {value.get('platform')!r} (known: {platforms})")
            elif kind == "extra_forbidden":
                known = ", ".join(f for f in target_models()[str(err['loc'][0])].model_fields if f != "platform")
                problems.append(f"unknown field {field!r} for platform {err['loc'][0]} (it takes: {known})")
            else:
                problems.append(f"{field or 'value'}: {err['msg']}")
        raise ValueError(f"target {name!r}: " + "; ".join(problems)) from None


def parse_targets(value: Any) -> Any:
    """Settings' ``targets`` mapping, each entry its platform's model (a before-validator)."""
    if not isinstance(value, dict):
        return value  # pydantic reports the wrong type
    return {name: parse_target(str(name), v) for name, v in value.items()}
