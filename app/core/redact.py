"""Values out of messages: a warehouse error quotes the value it choked on ("Could not
convert string 'boom 59' to INT32"), which can be a customer's data. Messages shown to
keys without the admin scope, and sent in webhook payloads, carry '…' instead."""

from __future__ import annotations

import re

# A quoted literal (single or double quotes, SQL-style doubled quotes inside).
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def redact_values(message: str | None) -> str | None:
    if message is None:
        return None
    return _QUOTED.sub("'…'", message)
