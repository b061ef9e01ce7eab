"""Cluster explorer: search by entity key, identifier value or resolved id; a cluster's golden
profile, members, link graph, and "why are these two linked?"."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.core.errors import LimitExceededError, NotFoundError
from app.core.vocabulary import parse_resolved_id
from app.services import explorer, lookups
from app.services.warehouse import DEFAULT_TARGET, warehouse
from app.ui import svg
from app.ui.web import Viewer, render, rt_of

router = APIRouter()

MEMBERS_PER_PAGE = 50
RESULTS_PER_PAGE = 50
Text = Annotated[str | None, Query(max_length=1024)]


@router.get("/clusters", response_class=HTMLResponse)
def search(request: Request, p: Viewer, q: Text = None, cursor: Text = None) -> Response:
    q = (q or "").strip()
    ctx: dict = {"q": q, "results": None, "next_cursor": None, "first_page": cursor is None}
    if q and cursor:  # a later page of one value's holders
        with warehouse(rt_of(request).settings, DEFAULT_TARGET, reuse=True) as a:
            ctx["results"], ctx["next_cursor"] = explorer.search_identifier(a, q, cursor, RESULTS_PER_PAGE)
    elif q:
        with warehouse(rt_of(request).settings, DEFAULT_TARGET, reuse=True) as a:
            if parse_resolved_id(q) is not None:
                try:
                    lookups.cluster(a, q, None, 1)
                    return RedirectResponse(f"/ui/clusters/{quote(q)}", status_code=303)
                except NotFoundError:
                    pass
            try:
                ent = lookups.entity(a, q)
                return RedirectResponse(
                    f"/ui/clusters/{quote(ent['resolved_id'])}?focus={quote(q, safe='')}", status_code=303
                )
            except NotFoundError:
                pass
            ctx["results"], ctx["next_cursor"] = explorer.search_identifier(a, q, None, RESULTS_PER_PAGE)
    return render(request, "search.html", ctx)


@router.get("/clusters/{resolved_id}", response_class=HTMLResponse)
def cluster_page(
    request: Request,
    resolved_id: str,
    p: Viewer,
    cursor: Text = None,
    focus: Text = None,
    a_key: Annotated[str | None, Query(alias="from", max_length=1024)] = None,
    b_key: Annotated[str | None, Query(alias="to", max_length=1024)] = None,
) -> Response:
    explain = None
    explain_error = None
    graph = None
    summary = None
    with warehouse(rt_of(request).settings, DEFAULT_TARGET, reuse=True) as a:
        page = lookups.cluster(a, resolved_id, cursor, MEMBERS_PER_PAGE)
        size = int(page["cluster_size"])
        first = page if cursor is None else lookups.cluster(a, resolved_id, None, 1)
        if a_key and b_key:
            try:
                explain = lookups.explain(a, a_key.strip(), b_key.strip(), rt_of(request).settings.explain_max_edges)
                if explain["resolved_id"] != resolved_id:
                    explain_error = f"{a_key} and {b_key} are in cluster {explain['resolved_id']}, not this one"
                    explain = None
            except (NotFoundError, LimitExceededError) as e:
                explain_error = e.message
        if size <= svg.GRAPH_MAX_NODES:
            whole = (
                page
                if (cursor is None and size <= MEMBERS_PER_PAGE)
                else lookups.cluster(a, resolved_id, None, svg.GRAPH_MAX_NODES)
            )
            graph = svg.build_graph(whole["members"], whole["edges"])
        else:
            summary = lookups.cluster_summary(a, resolved_id)
    picture = None
    if graph is not None:
        picture = svg.link_graph(graph, seed_text=resolved_id, path=explain["path"] if explain else (), focus=focus)
    return render(
        request,
        "cluster.html",
        {
            "c": page,
            "golden": first["golden_profile"],
            "confidence": first.get("confidence"),
            "graph": graph,
            "picture": picture,
            "summary": summary,
            "graph_limit": svg.GRAPH_MAX_NODES,
            "explain": explain,
            "explain_error": explain_error,
            "a_key": a_key or focus or "",
            "b_key": b_key or "",
            "focus": focus,
            "first_page": cursor is None,
        },
    )
