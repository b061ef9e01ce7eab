"""Values out of messages: a warehouse error quotes the value it choked on ("Could not
convert string 'boom 59' to INT32"), which can be a customer's data. Messages shown to
keys without the admin scope, and sent in webhook payloads, carry '…' instead. BigQuery
quotes nothing ("Bad int64 value: boom 59"): what follows "value:" to the end of the
sentence is a value too."""

from __future__ import annotations

import re

# A quoted literal (single or double quotes, SQL-style doubled quotes inside).
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_AFTER_VALUE = re.compile(r"(\bvalue:[ \t]*+)(?!'…')[^;\n]+", re.IGNORECASE)


def redact_values(message: str | None) -> str | None:
    if message is None:
        return None
    return _AFTER_VALUE.sub(r"\1'…'", _QUOTED.sub("'…'", message))
