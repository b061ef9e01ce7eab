"""`idr serve`: the HTTP service (embedded worker unless IDR_BROKER_URL is set)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console
from app.core.settings import Settings, get_settings


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _state_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.state_db_url).render_as_string(hide_password=True)


def _admin_key_note(settings: Settings) -> str | None:
    """Mint an admin key on the first start only (no active admin key yet) and return it;
    later starts mint nothing. A key from IDR_BOOTSTRAP_API_KEY is never printed."""
    from app.db.session import make_engine, make_session_factory, session_scope
    from app.services.auth import count_active, create_key

    engine = make_engine(settings.state_db_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            if settings.bootstrap_api_key is not None:
                _say("admin API key: the one in IDR_BOOTSTRAP_API_KEY (not shown)")
                return None
            active = count_active(s)
            if count_active(s, "admin"):
                _say(
                    f"API keys: {active} active in {_state_url(settings)} (`idr api-keys list`); "
                    "another: `idr api-keys create NAME --scopes read|run|admin`"
                )
                return None
            _, key = create_key(s, "admin", "admin")
    finally:
        engine.dispose()
    _say("first start: an admin API key was created; it is shown this once (only its hash is stored):")
    _say(f"  export IDR_API_KEY={key}")
    return key


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default IDR_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default IDR_API_PORT).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Create demo data + config if the warehouse is new.")] = False,
) -> None:
    """Start the HTTP service (embedded worker unless IDR_BROKER_URL is set)."""
    import uvicorn

    from app.main import create_app
    from app.services.execution import check_push_exporters

    settings = get_settings()
    check_push_exporters(settings)  # one line and exit 2, before anything starts
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    _check_port(host, port)
    if settings.state_db_auto_migrate:
        from app.db.session import upgrade

        upgrade(settings.state_db_url)
    if demo and not Path(settings.duckdb_path).exists():
        _create_demo(settings)
    _say(f"warehouse: {settings.duckdb_path} · state: {_state_url(settings)}")
    _admin_key_note(settings)
    base = f"http://{host}:{port}"
    auth = '-H "Authorization: Bearer $IDR_API_KEY"'
    _say(f"idr service on {base}; try:")
    for line in (
        f"curl -s {base}/readyz",
        f"curl -s {auth} -X POST {base}/v1/runs -H 'content-type: application/json' "
        '-d \'{"mode": "INCR", "dry_run": true}\'',
        f"curl -s {auth} '{base}/v1/runs?limit=5'",
        "idr dry-runs list    # then: idr dry-runs changes|clusters|apply RUN_ID",
        f"curl -s {auth} {base}/v1/entities/crm_customers:1",
        f"curl -s {auth} {base}/metrics | head",
        f"open {base}/docs  (interactive API docs)",
    ):
        _say(f"  {line}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _check_port(host: str, port: int) -> None:
    """Say it in one line before anything starts, not in uvicorn's shutdown log."""
    import socket

    from app.cli.common import fail

    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise fail(
                f"cannot listen on {host}:{port} ({e.strerror}): another service holds it; "
                "pick a port with --port or IDR_API_PORT",
                1,
            ) from None


def _create_demo(settings: Settings) -> None:
    from app.config.apply import apply_config
    from app.demo.generator import demo_config, generate
    from app.platforms import open_adapter
    from app.schema import init_schema
    from app.services import local_runs
    from app.services.runtime import set_runtime

    with open_adapter(settings=settings) as a:
        generate(a, 2000, seed=42)
        init_schema(a)
        apply_config(a, demo_config(records=2000), actor="idr serve --demo")
    # A first FULL run, so lookups answer from the first request; recorded like any run,
    # so GET /v1/runs lists it.
    rt = local_runs.open_runtime(settings)
    try:
        done = local_runs.run_recorded(rt, "default", "FULL", requested_by="idr serve --demo")
    finally:
        rt.close()
        set_runtime(None)
    _say(f"demo data, configuration and a first FULL run ({done.run_id}: {done.status}) in {settings.duckdb_path}")
