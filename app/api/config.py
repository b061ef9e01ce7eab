"""/v1/config: the whole document (GET/PUT, JSON or YAML) and CRUD per section.

Request bodies are taken as plain JSON and validated by app.config.validate, exactly as a
YAML file is, so both paths give the same answers; the OpenAPI schema still describes them.
"""

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from pydantic import create_model

from app.api.deps import Admin, Reader, Rt, Target, problems
from app.api.media import YAML_TYPES
from app.api.schemas import ConfigApplied, SettingIn, SettingOut
from app.config.model import IdrConfig
from app.core.errors import IdrError
from app.services import config as svc
from app.services.warehouse import DEFAULT_TARGET, check_target

router = APIRouter(prefix="/v1/config", tags=["config"], responses=problems())

ItemId = Annotated[str, Path(min_length=1, max_length=512)]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=4096,
        description="Optimistic concurrency: the ETag from your GET of this resource (or `*`). A write to a "
        "resource that changed since answers 412 and writes nothing. Without it the write goes ahead.",
    ),
]
ETAG_HEADER = {"ETag": {"description": "The resource's version, for If-Match on writes.", "schema": {"type": "string"}}}


def _tagged(response: Response, value: Any) -> Any:
    response.headers["ETag"] = svc.etag(value)
    return value


# Schemas the app adds to components (see app.main.custom_openapi).
EXTRA_SCHEMAS: list[type] = [IdrConfig]


def _schema_ref(model: type) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


@router.get(
    "",
    response_model=dict[str, Any],
    responses={
        200: {
            "content": {
                "application/json": {"schema": _schema_ref(IdrConfig)},
                "application/yaml": {"schema": {"type": "string"}},
            },
            "headers": ETAG_HEADER,
        }
    },
)
def get_config(request: Request, response: Response, rt: Rt, _: Reader, target: Target = DEFAULT_TARGET) -> Any:
    """The active configuration document: JSON, or YAML with `Accept: application/yaml` (as
    `idr config show` prints it, ready for `idr config apply` or `PUT /v1/config`). Its
    `ETag` (the same for both forms) goes in `If-Match` on `PUT /v1/config`."""
    doc = svc.get_document(rt, check_target(rt.settings, target))
    if _wants_yaml(request.headers.get("accept", "")):
        from app.config.yaml_io import dump_config

        return Response(
            dump_config(IdrConfig.model_validate(doc)), media_type="application/yaml", headers={"ETag": svc.etag(doc)}
        )
    return _tagged(response, doc)


def _wants_yaml(accept: str) -> bool:
    """YAML when the client ranks a YAML type above JSON (quality values honoured)."""
    best: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        kind = "yaml" if media.lower() in YAML_TYPES else "json" if media.lower() in ("application/json", "*/*") else ""
        if kind:
            best[kind] = max(best.get(kind, 0.0), q)
    return best.get("yaml", 0.0) > best.get("json", 0.0)


@router.put(
    "",
    response_model=ConfigApplied,
    responses={**problems(400, 412, 415), 200: {"headers": ETAG_HEADER}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _schema_ref(IdrConfig)},
                "application/yaml": {"schema": _schema_ref(IdrConfig)},
            },
        }
    },
)
async def put_config(
    request: Request,
    response: Response,
    rt: Rt,
    principal: Admin,
    if_match: IfMatch = None,
    target: Target = DEFAULT_TARGET,
    allow_empty: Annotated[
        bool, Query(description="Accept a document without sources, rules or identifier mappings (runs need them).")
    ] = False,
) -> ConfigApplied:
    """Replace the whole configuration (JSON or YAML body) in one transaction, validated like `idr config apply`.
    A document without sources, rules or identifier mappings is refused (422) unless `allow_empty=true`.
    `If-Match` (the ETag of `GET /v1/config`): 412 if the configuration changed since."""
    raw = await request.body()
    ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    try:
        if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
            doc = yaml.safe_load(raw.decode("utf-8")) if raw else None
        elif ctype == "application/json" or ctype.endswith("+json"):
            import json

            doc = json.loads(raw) if raw else None
        else:
            raise _unsupported(ctype)
    except RecursionError:
        raise IdrError(f"the body is nested too deeply (more than {MAX_DEPTH} levels)", field="") from None
    except (ValueError, yaml.YAMLError) as e:
        raise IdrError(f"the body is not valid {ctype}: {e}", field="") from None
    if _depth(doc) > MAX_DEPTH:
        raise IdrError(f"the body is nested too deeply (more than {MAX_DEPTH} levels)", field="")
    out = svc.put_document(
        rt, check_target(rt.settings, target), doc, principal.name, allow_empty=allow_empty, key_id=principal.key_id,
        if_match=if_match,
    )  # fmt: skip
    response.headers["ETag"] = out.pop("etag")
    return ConfigApplied(**out)


# A configuration document is 3 levels deep (section, list, row); anything far deeper is not one.
MAX_DEPTH = 32


def _depth(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """Nesting depth, counted only up to ``limit`` (iterative: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if d >= limit:
                return d
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _unsupported(ctype: str) -> Exception:
    err = IdrError(f"content type {ctype!r} is not supported; send application/json or application/yaml")
    err.status = 415
    err.code = "unsupported_media_type"
    return err


def _register(sec: svc.Section) -> None:
    item_model = create_model(f"{sec.model.__name__}Item", __base__=sec.model, id=(str, ...))
    list_model = create_model(f"{sec.model.__name__}List", items=(list[item_model], ...))  # type: ignore[valid-type]
    EXTRA_SCHEMAS.append(sec.model)
    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": _schema_ref(sec.model)}}}}
    tag = f"config: {sec.slug}"
    key_doc = (
        f"The item's id: its {sec.key[0]}" if sec.natural else "The item's id (a hash of " + ", ".join(sec.key) + ")"
    )
    item_id_param = Annotated[str, Path(min_length=1, max_length=512, description=key_doc)]

    def list_items(response: Response, rt: Rt, _: Reader, target: Target = DEFAULT_TARGET):
        return _tagged(response, {"items": svc.list_items(rt, check_target(rt.settings, target), sec.slug)})

    def create_item(
        rt: Rt,
        principal: Admin,
        body: Annotated[dict[str, Any], Body()],
        response: Response,
        target: Target = DEFAULT_TARGET,
        if_match: IfMatch = None,
    ):
        item = svc.create_item(
            rt, check_target(rt.settings, target), sec.slug, body, principal.name, principal.key_id, if_match
        )
        response.headers["Location"] = f"/v1/config/{sec.slug}/{item['id']}"
        return _tagged(response, item)

    def get_item(item_id: item_id_param, response: Response, rt: Rt, _: Reader, target: Target = DEFAULT_TARGET):  # type: ignore[valid-type]
        return _tagged(response, svc.get_item(rt, check_target(rt.settings, target), sec.slug, item_id))

    def replace_item(
        item_id: item_id_param,  # type: ignore[valid-type]
        rt: Rt,
        principal: Admin,
        body: Annotated[dict[str, Any], Body()],
        response: Response,
        target: Target = DEFAULT_TARGET,
        if_match: IfMatch = None,
    ):
        item = svc.replace_item(
            rt, check_target(rt.settings, target), sec.slug, item_id, body, principal.name, principal.key_id, if_match
        )
        return _tagged(response, item)

    def delete_item(
        item_id: item_id_param,  # type: ignore[valid-type]
        rt: Rt,
        principal: Admin,
        target: Target = DEFAULT_TARGET,
        if_match: IfMatch = None,
    ):
        svc.delete_item(
            rt, check_target(rt.settings, target), sec.slug, item_id, principal.name, principal.key_id, if_match
        )
        return Response(status_code=204)

    name = sec.slug.replace("-", "_")
    base = f"/{sec.slug}"
    router.add_api_route(
        base,
        list_items,
        methods=["GET"],
        response_model=list_model,
        tags=[tag],
        name=f"list_{name}",
        responses={200: {"headers": ETAG_HEADER}},
    )
    router.add_api_route(
        base,
        create_item,
        methods=["POST"],
        status_code=201,
        response_model=item_model,
        tags=[tag],
        name=f"create_{name}",
        openapi_extra=body_doc,
        responses={**problems(409, 412), 201: {"headers": ETAG_HEADER}},
    )
    router.add_api_route(
        base + "/{item_id}",
        get_item,
        methods=["GET"],
        response_model=item_model,
        tags=[tag],
        name=f"get_{name}",
        responses={**problems(404), 200: {"headers": ETAG_HEADER}},
    )
    router.add_api_route(
        base + "/{item_id}",
        replace_item,
        methods=["PUT"],
        response_model=item_model,
        tags=[tag],
        name=f"replace_{name}",
        openapi_extra=body_doc,
        responses={**problems(404, 412), 200: {"headers": ETAG_HEADER}},
    )
    router.add_api_route(
        base + "/{item_id}",
        delete_item,
        methods=["DELETE"],
        status_code=204,
        tags=[tag],
        name=f"delete_{name}",
        responses={**problems(404, 409, 412)},
        response_class=Response,
    )


for _sec in svc.SECTIONS.values():
    _register(_sec)


@router.get(
    "/settings", response_model=dict[str, str], tags=["config: settings"], responses={200: {"headers": ETAG_HEADER}}
)
def list_settings(response: Response, rt: Rt, _: Reader, target: Target = DEFAULT_TARGET) -> dict[str, str]:
    """Settings in idr_meta.config (large_cluster_threshold, dry_run_retention_days, ...)."""
    return _tagged(response, svc.list_settings(rt, check_target(rt.settings, target)))


@router.get(
    "/settings/{key}",
    response_model=SettingOut,
    tags=["config: settings"],
    responses={**problems(404), 200: {"headers": ETAG_HEADER}},
)
def get_setting(key: ItemId, response: Response, rt: Rt, _: Reader, target: Target = DEFAULT_TARGET) -> SettingOut:
    return SettingOut(**_tagged(response, svc.get_setting(rt, check_target(rt.settings, target), key)))


@router.put(
    "/settings/{key}",
    response_model=SettingOut,
    tags=["config: settings"],
    responses={**problems(404, 412), 200: {"headers": ETAG_HEADER}},
)
def put_setting(
    key: ItemId,
    body: SettingIn,
    response: Response,
    rt: Rt,
    principal: Admin,
    target: Target = DEFAULT_TARGET,
    if_match: IfMatch = None,
) -> SettingOut:
    tgt = check_target(rt.settings, target)
    out = svc.put_setting(rt, tgt, key, body.value, principal.name, principal.key_id, if_match)
    return SettingOut(**_tagged(response, out))
