"""`python -m app.cli` = `idr`."""

from app.cli import main

main()
