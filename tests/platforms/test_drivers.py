"""Driver call paths: fakesnow's HTTP server (the real connector over the wire), the
databricks-sql-connector as sent (recording cursor), and live warehouses when configured."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import pytest

from app.core.settings import Settings
from app.platforms import open_adapter
from app.platforms.snowflake import SnowflakeAdapter, snowflake_connector
from tests.platforms.conftest import unavailable
from tests.platforms.story import Warehouse, production, story_steps


def test_snowflake_story_through_fakesnow_http_server():
    """The real connector, over HTTP to fakesnow's server: same story, same result."""
    try:
        import fakesnow
    except ImportError as e:  # pragma: no cover
        unavailable("fakesnow", e)
    from tests.platforms.test_conformance import _reference

    class OneStatementPerRequest(SnowflakeAdapter):
        # fakesnow's HTTP server answers one statement per request and has no
        # /queries/{id}/result: the multi-statement path is the in-process stand-in's
        # (tests/platforms/snowflake_standin.py); here the wire path of single statements.
        batch_statements = False

    with fakesnow.server() as kwargs:
        a = OneStatementPerRequest(snowflake_connector({**kwargs, "database": "IDR_HTTP"}))
        wh = Warehouse(a)
        got = story_steps(wh)
        if "steps" in _reference:  # the conformance suite ran first: compare step by step
            assert [o["production"] for _, o in got] == [o["production"] for _, o in _reference["steps"]]
        # After the INCR step the bridge joins both chains (later steps delete it again).
        membership = dict(dict(got)["INCR"]["production"]["membership"])
        assert membership["crm:b00"] == membership["shop:bridge"] == membership["shop:a00"]
        assert "shop:bridge" not in dict(production(a)["membership"])
        assert a.scalar("SELECT count(*) FROM idr_out.run_history") == len(got)  # one run per step
        a.close()


class RecordingCursor:
    def __init__(self, log: list[tuple[str, Any]], answers: dict[str, list[tuple]]) -> None:
        self.log, self.answers = log, answers
        self.description: list[tuple] | None = None
        self._rows: list[tuple] = []

    def execute(self, sql: str, parameters: Any = None) -> None:
        self.log.append((sql, parameters))
        for needle, rows in self.answers.items():
            if needle in sql:
                self._rows = rows
                self.description = [(f"c{i}",) for i in range(len(rows[0]) if rows else 1)]
                return
        self._rows, self.description = [], None

    def fetchall(self) -> list[tuple]:
        return self._rows

    def close(self) -> None:
        pass


class RecordingConnection:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.log: list[tuple[str, Any]] = []
        self.answers: dict[str, list[tuple]] = {}

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self.log, self.answers)

    def close(self) -> None:
        pass


def test_databricks_sql_connector_statements_and_parameters_as_sent(monkeypatch, tmp_path):
    from databricks import sql as dbsql

    conns: list[RecordingConnection] = []

    def fake_connect(**kwargs: Any) -> RecordingConnection:
        conns.append(RecordingConnection(**kwargs))
        return conns[-1]

    monkeypatch.setattr(dbsql, "connect", fake_connect)
    token = tmp_path / "token"
    token.write_text("dapi-secret\n")
    settings = Settings(
        targets={
            "lake": {
                "platform": "databricks",
                "server_hostname": "adb-1.azuredatabricks.net",
                "http_path": "/sql/1.0/warehouses/abc",
                "access_token_file": str(token),
                "catalog": "main",
            }
        }
    )
    a = open_adapter(settings=settings, target="lake")
    assert "dapi-secret" not in repr(settings.targets)  # secrets stay out of logs and reprs
    ts = datetime(2024, 1, 2, 3, 4, 5)
    a.execute("DELETE FROM idr_meta.run_state WHERE table_id = $table_id", {"table_id": "o'brien"})
    a.execute(
        "INSERT INTO idr_meta.run_state (table_id, last_watermark_value, last_run_id, last_run_ts) "
        "VALUES ($t, CAST($wm AS TIMESTAMP), $r, $now)",
        {"t": "crm", "wm": None, "r": "run_1", "now": ts},
    )
    a.execute('ALTER TABLE "idr_work"."w1_cc_next" RENAME TO "w1_cc_cur"')
    a.execute(
        "CREATE TABLE idr_work.s AS SELECT g, string_agg(k, ',' ORDER BY k) AS keys FROM idr_work.m GROUP BY g"
    )
    conn = conns[0]
    assert conn.kwargs == {
        "server_hostname": "adb-1.azuredatabricks.net",
        "http_path": "/sql/1.0/warehouses/abc",
        "access_token": "dapi-secret",
        "catalog": "main",
    }
    assert conn.log == [
        ("DELETE FROM idr_meta.run_state WHERE table_id = :table_id", {"table_id": "o'brien"}),
        (
            "INSERT INTO idr_meta.run_state (table_id, last_watermark_value, last_run_id, last_run_ts) "
            "VALUES (:t, CAST(NULL AS TIMESTAMP_NTZ), :r, :now)",
            {"t": "crm", "r": "run_1", "now": ts},
        ),
        ("ALTER TABLE `idr_work`.`w1_cc_next` RENAME TO `idr_work`.`w1_cc_cur`", None),
        (
            "CREATE TABLE idr_work.s AS SELECT g, ARRAY_JOIN(ARRAY_SORT(COLLECT_LIST(k)), ',') AS keys "
            "FROM idr_work.m GROUP BY g",
            None,
        ),
    ]
    # A transaction stages written tables in shadows; the swap happens only on success.
    conn.log.clear()
    with a.transaction():
        a.execute("DELETE FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": "R1"})
        a.executemany(
            "INSERT INTO idr_out.identity_clusters_current (resolved_id, cluster_size) VALUES ($r, $n)",
            [{"r": "R1", "n": 2}, {"r": "R2", "n": 1}],
        )
    sent = [s for s, _ in conn.log]
    shadow = sent[0].split("CREATE TABLE ")[1].split(" AS ")[0]
    assert shadow.startswith("idr_work.tx") and shadow.endswith("_idr_out_identity_clusters_current")
    assert sent == [
        f"CREATE TABLE {shadow} AS SELECT * FROM idr_out.identity_clusters_current",
        f"DELETE FROM {shadow} WHERE resolved_id = :r",
        f"INSERT INTO {shadow} (resolved_id, cluster_size) VALUES (:r0_r, :r0_n), (:r1_r, :r1_n)",
        f"INSERT OVERWRITE TABLE idr_out.identity_clusters_current SELECT * FROM {shadow}",
        f"DROP TABLE IF EXISTS {shadow}",
    ]
    assert conn.log[2][1] == {"r0_r": "R1", "r0_n": 2, "r1_r": "R2", "r1_n": 1}
    # ... and a failing block drops its shadows without touching the real table.
    conn.log.clear()
    with pytest.raises(RuntimeError), a.transaction():
        a.execute("DELETE FROM idr_out.identity_clusters_current WHERE resolved_id = $r", {"r": "R1"})
        raise RuntimeError("boom")
    assert not any("INSERT OVERWRITE" in s for s, _ in conn.log)
    assert conn.log[-1][0].startswith("DROP TABLE IF EXISTS idr_work.tx")


LIVE = [t.strip() for t in os.environ.get("IDR_LIVE_TARGETS", "").split(",") if t.strip()]


@pytest.mark.live
@pytest.mark.skipif(not LIVE, reason="IDR_LIVE_TARGETS names no configured target with credentials")
@pytest.mark.parametrize("target", LIVE or ["none"])
def test_live_target_story_matches_duckdb(target, make_adapter):
    """Against a real account (IDR_LIVE_TARGETS=prod,... plus IDR_TARGETS__PROD__...)."""
    from tests.platforms.test_conformance import reference

    ref = reference(make_adapter)
    a = open_adapter(target=target)
    got = story_steps(Warehouse(a))
    assert [o["production"] for _, o in got] == [o["production"] for _, o in ref]

