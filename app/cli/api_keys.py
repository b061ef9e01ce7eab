"""`idr api-keys ...` and `idr db upgrade`: the service's keys and state database (IDR_STATE_DB_URL)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import FormatOpt, check_format, console, fail, print_rows
from app.core.settings import get_settings

api_keys_app = typer.Typer(
    help="Create, list and revoke API keys of the HTTP service (stored hashed in IDR_STATE_DB_URL).",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Service state database.", no_args_is_help=True)


def state_session():
    """A session on the state DB the service uses (same setting, same default), migrated first."""
    from app.db.session import make_engine, make_session_factory, session_scope, upgrade

    settings = get_settings()
    upgrade(settings.state_db_url)
    return session_scope(make_session_factory(make_engine(settings.state_db_url)))


@api_keys_app.command("create")
def api_key_create(
    name: str,
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: read, run, admin (a higher one includes the lower).")
    ] = "read",
    key_only: Annotated[
        bool, typer.Option("--key-only", help="Print only the key (for a file or a variable).")
    ] = False,
) -> None:
    """Create a key. It is printed once, here; only its hash is stored."""
    from app.services.auth import create_key, parse_scopes

    parse_scopes(scopes)  # bad scopes are refused before the state DB is touched
    with state_session() as s:
        row, key = create_key(s, name, scopes)
    if key_only:
        typer.echo(key)
        return
    console.print(f"key {row.id} '{row.name}' ({row.scopes}), shown once: {key}", highlight=False, markup=False)


@api_keys_app.command("list")
def api_key_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    fmt: FormatOpt = "table",
) -> None:
    """Keys with their scopes, creation and last use (never the secret)."""
    from app.api.schemas import utc
    from app.services.auth import list_keys

    fmt = check_format(fmt)
    with state_session() as s:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "scopes": k.scopes,
                "prefix": k.prefix + "…",
                "created_at": utc(k.created_at),
                "last_used_at": utc(k.last_used_at),
                "revoked_at": utc(k.revoked_at),
            }
            for k in list_keys(s, include_revoked)
        ]
    columns = [
        ("id", "id"),
        ("name", "name"),
        ("scopes", "scopes"),
        ("prefix", "starts with"),
        ("created_at", "created (UTC)"),
        ("last_used_at", "last used (UTC)"),
    ]
    if include_revoked:
        columns.append(("revoked_at", "revoked (UTC)"))
    print_rows(rows, columns, fmt, title="API keys", keep_whole=("id",))


@api_keys_app.command("revoke")
def api_key_revoke(key_id: str) -> None:
    """Revoke a key at once (its id is in `idr api-keys list`)."""
    from app.services.auth import revoke_key

    with state_session() as s:
        ok = revoke_key(s, key_id)
    if not ok:
        raise fail(f"no active key {key_id!r} (`idr api-keys list` shows the ids)", 1)
    console.print(f"key {key_id} revoked", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations to IDR_STATE_DB_URL."""
    from app.db.session import upgrade

    upgrade(get_settings().state_db_url)
    console.print("state database up to date")


webhooks_app = typer.Typer(help="Webhook signing secrets at rest (IDR_WEBHOOK_SECRET_KEYS).", no_args_is_help=True)


@webhooks_app.command("new-key")
def webhooks_new_key() -> None:
    """Print a new Fernet key for IDR_WEBHOOK_SECRET_KEYS (put it first to rotate)."""
    from app.services.secretbox import new_key

    typer.echo(new_key())


@webhooks_app.command("rotate-secrets")
def webhooks_rotate_secrets() -> None:
    """Re-encrypt every webhook secret under the first key of IDR_WEBHOOK_SECRET_KEYS; after
    this the other keys can be dropped from the list."""
    from app.services.secretbox import rotate

    with state_session() as s:
        n = rotate(get_settings(), s)
    console.print(f"re-encrypted {n} webhook secret(s) under the first key", highlight=False)
