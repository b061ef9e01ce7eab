"""Writes openapi/openapi.json from the app (``python -m app.openapi``); a test fails on drift."""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def render() -> str:
    from app.core.settings import Settings
    from app.main import create_app

    # Fixed settings: the contract must not depend on the environment that generates it.
    app = create_app(Settings(metrics_require_auth=True, state_db_url="sqlite://", broker_url=None))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run `python -m app.openapi`", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
