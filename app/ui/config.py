"""Configuration: every section as a table for any key; admin keys edit the whole document as
YAML, validated by the same code as `PUT /v1/config` and `idr config apply`."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.config.model import IdrConfig
from app.config.yaml_io import dump_config
from app.core.errors import ConfigError
from app.services import config as svc
from app.services.warehouse import DEFAULT_TARGET
from app.ui.web import Form, Viewer, flash, render, require, rt_of

router = APIRouter()

# (section key, title, columns shown)
SECTIONS: list[tuple[str, str, list[str]]] = [
    ("sources", "Sources", ["table_id", "table_fqn", "entity_key_expr", "watermark_column", "is_active"]),
    ("source_trust", "Source trust", ["table_id", "source_name", "trust_rank", "is_active"]),
    ("rules", "Rules", ["rule_id", "identifier_type", "canonicalize", "max_group_size", "priority", "is_active"]),
    (
        "identifier_mappings",
        "Identifier mappings",
        ["table_id", "identifier_type", "identifier_value_expr", "is_hashed"],
    ),
    ("exclusions", "Exclusions", ["identifier_type", "identifier_value_pattern", "match_type", "reason"]),
    ("attribute_mappings", "Attribute mappings", ["table_id", "attribute_name", "attribute_expr"]),
    ("survivorship_rules", "Survivorship", ["attribute_name", "strategy", "source_priority_list", "recency_field"]),
]


def _document(request: Request) -> dict[str, Any]:
    return svc.get_document(rt_of(request), DEFAULT_TARGET)


def _page(
    request: Request,
    doc: dict[str, Any],
    text: str,
    errors: list[dict[str, str]] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "config.html",
        {
            "doc": doc,
            "sections": SECTIONS,
            "yaml_text": text,
            "errors": errors or [],
            "error_message": message,
        },
        status_code=status,
    )


@router.get("/config", response_class=HTMLResponse)
def config_page(request: Request, p: Viewer) -> Response:
    doc = _document(request)
    return _page(request, doc, dump_config(IdrConfig.model_validate(doc)))


@router.post("/config", response_class=HTMLResponse)
def save_config(request: Request, p: Viewer, form: Form) -> Response:
    require(p, "admin")
    text = form.get("document", "")
    allow_empty = form.get("allow_empty") == "on"
    try:
        doc = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        return _page(request, _document(request), text, message=f"YAML syntax error{where}: {problem}", status=400)
    try:
        out = svc.put_document(rt_of(request), DEFAULT_TARGET, doc, p.name, allow_empty=allow_empty, key_id=p.key_id)
    except ConfigError as e:
        return _page(request, _document(request), text, errors=e.errors, message=e.message, status=422)
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in out["counts"].items())
    flash(request, f"Configuration saved: {counts}.")
    return RedirectResponse("/ui/config", status_code=303)
