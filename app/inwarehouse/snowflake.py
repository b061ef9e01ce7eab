"""``CALL idr_run('INCR', TRUE)`` on Snowflake: a Python stored procedure running the same
pipeline on the session it is called with, and what ``idr deploy snowflake-procedure``
sends to create it.

The procedure's code is this package: ``idr_app.zip`` (``app`` and the stage SQL) and the
handler module ``idr_procedure.py`` are uploaded to a stage with ``PUT``; the procedure
imports both and declares the Anaconda packages idr imports (``PACKAGES``).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError

# What the handler imports beyond the standard library and this package (the Snowflake
# Anaconda channel's names): app.platforms imports duckdb (the embedded adapter) and numpy.
PACKAGES = (
    "snowflake-snowpark-python",
    "sqlglot",
    "pydantic",
    "pydantic-settings",
    "python-dotenv",
    "duckdb",
    "numpy",
)
RUNTIME_VERSION = "3.11"
STAGE = "IDR_CODE"
HANDLER_FILE = "idr_procedure.py"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")


def handler(session: Any, mode: Any, dry_run: Any) -> dict[str, Any]:
    """The procedure body: ``run_here`` on a Snowpark adapter over ``session``."""
    from app.inwarehouse import run_here
    from app.platforms.snowflake import SnowparkAdapter

    return run_here(SnowparkAdapter(lambda: session), mode, dry_run)


def identifier(value: str, field: str) -> str:
    """A schema or procedure name, quoted as Snowflake stores an unquoted one (upper case)."""
    if not _IDENT.match(value or ""):
        raise ConfigError(f"{field} must be a plain Snowflake identifier (letters, digits, _ and $), not {value!r}",
                          field=field)  # fmt: skip
    return f'"{value.upper()}"'


def archive() -> bytes:
    """``idr_app.zip``: the ``app`` package and the stage SQL, byte for byte the same for
    the same sources (fixed timestamps, sorted), so unpacking is cached by its digest."""
    from app.core.settings import get_settings

    app_dir = Path(__file__).resolve().parents[1]
    sql_dir = get_settings().sql_dir
    files = [(p, "app/" + p.relative_to(app_dir).as_posix()) for p in app_dir.rglob("*")]
    files += [(p, "sql/" + p.relative_to(sql_dir).as_posix()) for p in sql_dir.rglob("*")]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, name in sorted(files, key=lambda f: f[1]):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
    return buf.getvalue()


def procedure_ddl(schema: str = "IDR_META", name: str = "IDR_RUN") -> str:
    s, n = identifier(schema, "schema"), identifier(name, "name")
    stage = f"@{s}.{STAGE}"
    packages = ", ".join(f"'{p}'" for p in PACKAGES)
    return (
        f"CREATE OR REPLACE PROCEDURE {s}.{n}(MODE VARCHAR DEFAULT 'INCR', DRY_RUN BOOLEAN DEFAULT FALSE)\n"
        "RETURNS VARIANT\n"
        "LANGUAGE PYTHON\n"
        f"RUNTIME_VERSION = '{RUNTIME_VERSION}'\n"
        f"PACKAGES = ({packages})\n"
        f"IMPORTS = ('{stage}/{HANDLER_FILE}', '{stage}/idr_app.zip')\n"
        "HANDLER = 'idr_procedure.run'\n"
        "EXECUTE AS CALLER"
    )


def deploy_statements(folder: Path, schema: str = "IDR_META", name: str = "IDR_RUN") -> list[str]:
    """Write the two files into ``folder``; the statements that upload them and create the
    procedure (schema and stage created if missing, files and procedure replaced)."""
    from app.inwarehouse import idr_procedure

    s = identifier(schema, "schema")
    ddl = procedure_ddl(schema, name)
    if "'" in str(folder.resolve()):  # PUT takes the path quoted, unbound
        raise ConfigError(f"the upload folder {folder} contains a quote; set TMPDIR elsewhere", field="TMPDIR")
    (folder / idr_procedure.ARCHIVE).write_bytes(archive())
    (folder / HANDLER_FILE).write_bytes(Path(idr_procedure.__file__).read_bytes())
    put = "PUT 'file://{}' @{}.{} AUTO_COMPRESS = FALSE OVERWRITE = TRUE"
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE STAGE IF NOT EXISTS {s}.{STAGE}",
        put.format((folder / HANDLER_FILE).resolve().as_posix(), s, STAGE),
        put.format((folder / idr_procedure.ARCHIVE).resolve().as_posix(), s, STAGE),
        ddl,
    ]


def deploy(connection: Any, schema: str = "IDR_META", name: str = "IDR_RUN") -> list[str]:
    """Send the statements on a snowflake.connector connection (PUT and CREATE PROCEDURE are
    sent as written: not SQL the adapters transpile). Returns them."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="idr-deploy-") as tmp:
        statements = deploy_statements(Path(tmp), schema, name)
        cur = connection.cursor()
        try:
            for sql in statements:
                cur.execute(sql)
        finally:
            cur.close()
    return statements
