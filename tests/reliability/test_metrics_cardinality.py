"""/metrics stays bounded: unknown methods and paths never become label values."""

from __future__ import annotations

import secrets

from tests.service.conftest import make_settings


def test_random_methods_and_paths_add_no_series(app_factory, warehouse_path, tmp_path):
    client = app_factory(make_settings(tmp_path, warehouse_path))

    def noise(n: int) -> str:
        for _ in range(n):
            method = secrets.token_hex(4).upper()
            client.request(method, f"/v1/runs/{secrets.token_hex(8)}", headers={"Authorization": ""})
            client.get(f"/nope/{secrets.token_hex(8)}", headers={"Authorization": ""})
        return client.get("/metrics").text

    client.get("/metrics")  # the scrape's own series exist from here on
    baseline = noise(20)
    after = noise(100)
    series = [line for line in after.splitlines() if line.startswith("idr_http_requests_total{")]
    assert len(series) <= 8, series
    assert all('method="other"' in s or any(f'method="{m}"' in s for m in ("GET", "POST")) for s in series)
    assert not any(secrets_in(s) for s in series)
    def names(text: str) -> set[str]:
        return {line.split(" ")[0] for line in text.splitlines() if line.startswith("idr_http_")}

    assert names(after) == names(baseline)  # 100 more random requests: not one new series


def secrets_in(line: str) -> bool:
    """A 16-hex-digit path segment (the random ids above) in a label."""
    import re

    return re.search(r"[0-9a-f]{16}", line) is not None
