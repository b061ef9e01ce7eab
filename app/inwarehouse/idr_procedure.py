"""The Snowflake stored procedure's handler module (``HANDLER = 'idr_procedure.run'``).

Uploaded beside ``idr_app.zip`` (the ``app`` package and the stage SQL) and listed in the
procedure's IMPORTS. Standard library only: it unpacks the archive once per warehouse
process into the temporary directory (idr reads its SQL files from disk, which a zip
import cannot give), puts it first on ``sys.path`` and hands over to
``app.inwarehouse.snowflake.handler``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from typing import Any

ARCHIVE = "idr_app.zip"
IMPORT_DIRECTORY = "snowflake_import_directory"  # where Snowflake puts a procedure's IMPORTS


def prepare(import_dir: str | None = None) -> str:
    """Unpack the archive (once per content) and make its ``app`` the one imported."""
    archive = os.path.join(import_dir or sys._xoptions[IMPORT_DIRECTORY], ARCHIVE)
    with open(archive, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    root = os.path.join(tempfile.gettempdir(), f"idr-{digest}")
    if not os.path.isdir(os.path.join(root, "app")):
        partial = f"{root}.{os.getpid()}"
        with zipfile.ZipFile(archive) as z:
            z.extractall(partial)
        with contextlib.suppress(OSError):  # another call in this process unpacked it first
            os.replace(partial, root)
        shutil.rmtree(partial, ignore_errors=True)
    if root not in sys.path:
        sys.path.insert(0, root)
    return root


def run(session: Any, mode: str, dry_run: bool) -> dict[str, Any]:
    prepare()
    from app.inwarehouse.snowflake import handler

    return handler(session, mode, dry_run)
