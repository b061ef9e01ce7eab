"""Exact partitions and ids for the scenarios the predecessor got wrong."""

from __future__ import annotations

from tests.pipeline.world import STORED_IDENTIFIERS, World, clone


def test_two_records_sharing_an_email():
    w = World.create()
    w.upsert("crm", "1", email="ann@x.com")
    w.upsert("crm", "2", email="ann@x.com")
    w.upsert("crm", "3", email="bob@x.com")
    r = w.run()
    assert r.status == "SUCCESS", r.error_message
    assert w.partition() == {frozenset({"crm:1", "crm:2"}), frozenset({"crm:3"})}
    # New ids are numbered in order of each cluster's smallest member key.
    assert w.membership() == {"crm:1": "R00000000001", "crm:2": "R00000000001", "crm:3": "R00000000002"}
    assert w.clusters() == {"R00000000001": 2, "R00000000002": 1}


def test_same_email_in_different_case_and_whitespace():
    w = World.create()
    w.upsert("crm", "1", email="Ann@X.com")
    w.upsert("crm", "2", email="  ann@x.COM ")
    w.run()
    assert w.partition() == {frozenset({"crm:1", "crm:2"})}


def test_chain_of_three_across_three_sources():
    w = World.create(tables=("crm", "shop", "loyalty"))
    w.upsert("crm", "c1", email="a@x.com")
    w.upsert("shop", "o1", email="A@x.com", phone="+1 (555) 010-0001")
    w.upsert("loyalty", "m1", phone="15550100001")
    w.upsert("loyalty", "m2", phone="999")
    r = w.run()
    assert r.status == "SUCCESS"
    assert w.partition() == {frozenset({"crm:c1", "shop:o1", "loyalty:m1"}), frozenset({"loyalty:m2"})}
    edges = w.adapter.fetchall(
        "SELECT rule_id, left_entity_key, right_entity_key, identifier_value_norm FROM idr_out.identity_edges_current "
        "ORDER BY 1"
    )
    assert edges == [("R_EMAIL", "crm:c1", "shop:o1", "a@x.com"), ("R_PHONE", "loyalty:m1", "shop:o1", "15550100001")]


def test_two_disjoint_graphs():
    w = World.create()
    for i in range(5):
        w.upsert("crm", f"a{i}", email=f"a{i}@x.com", phone=f"{i}")  # a-chain via phone/email
        w.upsert("crm", f"b{i}", email=f"a{i}@x.com" if i == 0 else f"b{i}@x.com")
    w.run()
    part = w.partition()
    assert frozenset({"crm:a0", "crm:b0"}) in part
    assert len(part) == 9


def test_chain_of_100_alternating_email_and_phone_is_one_cluster_in_few_rounds():
    w = World.create()
    for i in range(100):
        # record i shares email with i-1 (odd i) or phone with i-1 (even i)
        email = f"e{(i + 1) // 2}@x.com"
        phone = f"{i // 2:06d}"
        w.upsert("crm", f"{i:03d}", email=email, phone=phone)
    r = w.run(engine="sql")  # the warehouse path: rounds are what this test is about
    assert r.status == "SUCCESS"
    assert len(w.partition()) == 1
    assert len(w.membership()) == 100
    assert 1 <= r.lp_iterations <= 20  # log-like, not ~100 rounds
    hist = w.adapter.fetchone("SELECT lp_iterations FROM idr_out.run_history WHERE run_id = $r", {"r": r.run_id})
    assert hist == (r.lp_iterations,)


def test_junk_email_over_max_group_size_is_skipped_and_audited():
    w = World.create(max_group_size=5)
    for i in range(8):
        w.upsert("crm", str(i), email="test@test.com", phone=f"p{i}" if i % 2 else None)
    w.upsert("crm", "8", email="real@x.com")
    w.upsert("crm", "9", email="real@x.com")
    r = w.run()
    assert r.status == "SUCCESS_WITH_WARNINGS"
    assert r.groups_skipped == 1
    part = w.partition()
    assert max(len(g) for g in part) == 2  # no giant cluster
    assert frozenset({"crm:8", "crm:9"}) in part
    rows = w.adapter.fetchall(
        "SELECT identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason "
        "FROM idr_out.skipped_identifier_groups WHERE run_id = $r",
        {"r": r.run_id},
    )
    assert rows == [("EMAIL", "test@test.com", 8, 5, "crm:0,crm:1,crm:2,crm:3,crm:4", "max_group_size exceeded")]


def test_excluded_value_links_nothing():
    w = World.create(
        exclusions=[
            {"identifier_type": "EMAIL", "identifier_value_pattern": "NOBODY@x.com", "match_type": "EXACT"},
            {"identifier_type": "PHONE", "identifier_value_pattern": "000%", "match_type": "LIKE"},
        ]
    )
    w.upsert("crm", "1", email="nobody@x.com", phone="000-111")
    w.upsert("crm", "2", email=" Nobody@X.com", phone="(000) 111")
    w.upsert("crm", "3", phone="555")
    w.upsert("crm", "4", phone="555")
    r = w.run()
    assert r.values_excluded == 4
    assert w.partition() == {frozenset({"crm:1"}), frozenset({"crm:2"}), frozenset({"crm:3", "crm:4"})}


def test_quotes_and_injection_attempts_are_plain_data():
    w = World.create()
    evil = "x'; DROP TABLE idr_out.run_history; --"
    w.upsert("crm", evil, email="o'brien@x.com")
    w.upsert("crm", "2", email="O'Brien@x.com", name="O'Brien")
    r = w.run()
    assert r.status == "SUCCESS", r.error_message
    assert w.partition() == {frozenset({f"crm:{evil}", "crm:2"})}
    assert w.adapter.table_exists("idr_out", "run_history")
    assert w.adapter.fetchone("SELECT count(*) FROM src.crm") == (2,)
    golden = w.adapter.fetchall(
        "SELECT attribute_value FROM idr_out.golden_profile_current WHERE attribute_name='name'"
    )
    assert golden == [("O'Brien",)]


def test_incr_bridge_merges_two_long_chains_like_full():
    w = World.create()
    for side, code in (("a", 1), ("b", 2)):
        for i in range(20):  # record i links to i-1 by phone (odd i) or email (even i)
            w.upsert("crm", f"{side}{i:02d}", email=f"{side}{(i + 1) // 2}@x.com", phone=f"{code}{i // 2:04d}")
    w.run()
    part = w.partition()
    assert len(part) == 2 and all(len(g) == 20 for g in part)
    ids = set(w.membership().values())
    prior = clone(w)
    w.upsert("crm", "bridge", email="a0@x.com", phone="20000")  # links a00 and b00
    r = w.run("INCR")
    assert r.status == "SUCCESS", r.error_message
    assert len(w.partition()) == 1 and len(w.membership()) == 41
    # Equal sizes: the merged cluster keeps the smallest current id.
    assert set(w.membership().values()) == {min(ids)}
    prior.upsert("crm", "bridge", email="a0@x.com", phone="20000")
    prior.run("FULL")
    assert prior.membership() == w.membership()


def test_merge_keeps_id_of_largest_current_cluster():
    w = World.create()
    w.upsert("crm", "a1", email="a@x.com")  # cluster R1 (size 1, smallest key)
    for i in range(3):
        w.upsert("crm", f"b{i}", email="b@x.com")  # cluster R2 (size 3)
    w.run()
    big = w.membership()["crm:b0"]
    w.upsert("crm", "z", email="a@x.com", phone="5")
    w.upsert("crm", "a1", email="a@x.com", phone="5")
    w.upsert("crm", "b0", email="b@x.com", phone="5")
    w.run("INCR")
    assert set(w.membership().values()) == {big}


def test_split_keeps_id_for_largest_part_and_new_ids_are_never_reused():
    w = World.create()
    # a1-a2-a3 linked by email, a3-b1 by phone, b1-b2 by email: one cluster of 5
    w.upsert("crm", "a1", email="a@x.com")
    w.upsert("crm", "a2", email="a@x.com")
    w.upsert("crm", "a3", email="a@x.com", phone="1")
    w.upsert("crm", "b1", email="b@x.com", phone="1")
    w.upsert("crm", "b2", email="b@x.com")
    w.run()
    (rid,) = set(w.membership().values())
    w.upsert("crm", "b1", email="b@x.com", phone="2")  # the link a3-b1 goes
    r = w.run("INCR")
    assert r.status == "SUCCESS"
    m = w.membership()
    assert {m["crm:a1"], m["crm:a2"], m["crm:a3"]} == {rid}
    assert m["crm:b1"] == m["crm:b2"] != rid
    new_b = m["crm:b1"]
    # Merge again, then split again: the split-off part gets a fresh id, not new_b.
    w.upsert("crm", "b1", email="b@x.com", phone="1")
    w.run("INCR")
    assert set(w.membership().values()) == {rid}
    w.upsert("crm", "b1", email="b@x.com", phone="3")
    w.run("INCR")
    m = w.membership()
    assert m["crm:b1"] not in (rid, new_b)
    seq = w.adapter.scalar("SELECT next_value FROM idr_meta.resolved_id_sequence")
    assert seq == 4


def test_full_rederives_edges_and_sees_deletes():
    w = World.create()
    w.upsert("crm", "1", email="a@x.com")
    w.upsert("crm", "2", email="a@x.com")
    w.upsert("crm", "3", email="a@x.com")
    w.run()
    w.delete("crm", "3")
    w.adapter.execute("UPDATE src.crm SET email = 'other@x.com' WHERE id = '2'")  # no new watermark
    r = w.run("FULL")
    assert r.status == "SUCCESS"
    assert w.partition() == {frozenset({"crm:1"}), frozenset({"crm:2"})}
    assert w.adapter.fetchall("SELECT * FROM idr_out.identity_edges_current") == []
    assert w.adapter.fetchall(f"SELECT entity_key FROM ({STORED_IDENTIFIERS}) AS s WHERE entity_key = 'crm:3'") == []


def test_untouched_cluster_keeps_id_and_timestamp():
    w = World.create()
    w.upsert("crm", "1", email="a@x.com")
    w.upsert("crm", "2", email="a@x.com")
    w.upsert("crm", "3", email="c@x.com")
    w.run()
    before = w.adapter.fetchall(
        "SELECT * FROM idr_out.identity_resolved_membership_current WHERE entity_key IN ('crm:1', 'crm:2') ORDER BY 1"
    )
    w.upsert("crm", "3", email="c@x.com", phone="9")
    w.upsert("crm", "4", phone="9")
    w.run("INCR")
    w.run("FULL")
    after = w.adapter.fetchall(
        "SELECT * FROM idr_out.identity_resolved_membership_current WHERE entity_key IN ('crm:1', 'crm:2') ORDER BY 1"
    )
    assert before == after


def test_golden_profile_strategies():
    w = World.create(
        tables=("crm", "shop"),
        extra={
            "survivorship_rules": [
                {"attribute_name": "name", "strategy": "SOURCE_PRIORITY", "source_priority_list": "shop,crm"},
                {"attribute_name": "email", "strategy": "MOST_FREQUENT"},
            ]
        },
    )
    w.upsert("crm", "1", email="a@x.com", phone="1", name="Crm Name")
    w.upsert("shop", "1", email="b@x.com", phone="1", name="Shop Name")
    w.upsert("crm", "2", email="b@x.com", name="Newest")
    w.run()
    golden = dict(w.adapter.fetchall("SELECT attribute_name, attribute_value FROM idr_out.golden_profile_current"))
    assert golden == {"name": "Shop Name", "email": "b@x.com"}


def test_two_mappings_of_one_type_in_one_source_count_each_value_once():
    # email and its upper-cased copy canonicalize to the same EMAIL value: the run must
    # still hold one identifier row per (entity, type, value) and link like one mapping.
    mappings = [
        {"table_id": "crm", "identifier_type": "EMAIL", "identifier_value_expr": "email"},
        {"table_id": "crm", "identifier_type": "EMAIL", "identifier_value_expr": "upper(email)"},
        {"table_id": "crm", "identifier_type": "PHONE", "identifier_value_expr": "phone"},
    ]
    w = World.create(extra={"identifier_mappings": mappings})
    w.upsert("crm", "1", email="a@x.com")
    w.upsert("crm", "2", email="A@X.COM ")
    w.upsert("crm", "3", email="b@x.com")
    assert w.run().ok
    assert w.partition() == {frozenset({"crm:1", "crm:2"}), frozenset({"crm:3"})}
    rows = w.adapter.fetchall(
        f"SELECT entity_key, count(*) FROM ({STORED_IDENTIFIERS}) AS s WHERE identifier_type = 'EMAIL' "
        "GROUP BY entity_key ORDER BY 1"
    )
    assert rows == [("crm:1", 1), ("crm:2", 1), ("crm:3", 1)]
    edges = w.adapter.fetchall("SELECT left_entity_key, right_entity_key FROM idr_out.identity_edges_current")
    assert edges == [("crm:1", "crm:2")]


def test_edges_keep_first_seen_and_advance_last_seen_across_runs():
    w = World.create()
    w.upsert("crm", "1", email="a@x.com")
    w.upsert("crm", "2", email="a@x.com")
    q = "SELECT first_seen_ts, last_seen_ts FROM idr_out.identity_edges_current"
    for mode in ("FULL", "INCR", "FULL"):
        if mode == "INCR":
            w.upsert("crm", "3", email="a@x.com")  # same group: its edges are re-derived
        assert w.run(mode).ok
        seen = w.adapter.fetchall(q + " WHERE right_entity_key = 'crm:2'")
        if mode == "FULL" and len(w.runs) == 1:
            first = seen[0][0]
        assert len(seen) == 1 and seen[0][0] == first, mode
    assert seen[0][1] > first


def test_duplicate_source_keys_keep_their_latest_record():
    w = World.create()
    w.upsert("crm", "1", email="old@x.com", name="Old")
    # A second row with the same key (upsert replaces, so insert directly), newer.
    w.adapter.execute("INSERT INTO src.crm VALUES ('1', 'new@x.com', NULL, 'New', $ts)", {"ts": w.tick()})
    w.upsert("crm", "2", email="new@x.com")
    w.upsert("crm", "3", email="old@x.com")
    r = w.run()
    assert r.ok and r.entities_processed == 3
    assert w.partition() == {frozenset({"crm:1", "crm:2"}), frozenset({"crm:3"})}
    names = w.adapter.fetchall(
        "SELECT attribute_value FROM idr_out.golden_profile_current WHERE attribute_name = 'name'"
    )
    assert ("New",) in names and ("Old",) not in names


def test_incr_rereads_an_unchanged_members_latest_record_when_its_key_repeats():
    # INCR re-reads the other members of an impacted cluster from their source; a key
    # with an older row beside it must still yield only its latest record.
    # (The latest record has no name: the older row's name must not reach the profile.)
    w = World.create()
    w.upsert("crm", "1", email="a@x.com", name="Old")
    w.adapter.execute("INSERT INTO src.crm VALUES ('1', 'a@x.com', NULL, NULL, $ts)", {"ts": w.tick()})
    w.upsert("crm", "3", email="c@x.com", name="Other")
    assert w.run().ok
    names = (
        "SELECT attribute_value, source_entity_key FROM idr_out.golden_profile_current WHERE attribute_name = 'name'"
    )
    assert w.adapter.fetchall(names) == [("Other", "crm:3")]
    w.upsert("crm", "2", email="a@x.com")  # joins crm:1's cluster, brings no name
    r = w.run("INCR")
    assert r.ok and r.entities_processed == 1
    assert w.partition() == {frozenset({"crm:1", "crm:2"}), frozenset({"crm:3"})}
    assert w.adapter.fetchall(names) == [("Other", "crm:3")]


def test_identifiers_current_stores_only_values_no_edge_links():
    # Linked values live in the edges (their holders are the edge ends); identifiers_current
    # keeps the rest: values held by one record and skipped groups. Together they are every
    # identifier, after FULL and after INCR runs that link, unlink and outgrow groups.
    w = World.create(max_group_size=3)
    w.upsert("crm", "1", email="a@x.com", phone="111")
    w.upsert("crm", "2", email="a@x.com", phone="222")
    w.upsert("crm", "3", email="b@x.com", phone="333")
    for i in range(4, 8):
        w.upsert("crm", str(i), phone="999")  # four holders > max_group_size: skipped

    def check(expected: set[tuple[str, str, str]], linked: set[tuple[str, str]]) -> None:
        stored = set(w.adapter.fetchall(STORED_IDENTIFIERS))
        assert stored == expected
        q = "SELECT entity_key, identifier_type, identifier_value_norm FROM idr_out.identifiers_current"
        current = set(w.adapter.fetchall(q))
        assert current == {r for r in expected if (r[1], r[2]) not in linked}

    expected = {
        ("crm:1", "EMAIL", "a@x.com"),
        ("crm:2", "EMAIL", "a@x.com"),
        ("crm:3", "EMAIL", "b@x.com"),
        ("crm:1", "PHONE", "111"),
        ("crm:2", "PHONE", "222"),
        ("crm:3", "PHONE", "333"),
        *{(f"crm:{i}", "PHONE", "999") for i in range(4, 8)},
    }
    assert w.run().ok
    check(expected, linked={("EMAIL", "a@x.com")})
    # INCR: b@x.com gains a holder (linked now), crm:2 leaves a@x.com (a singleton again),
    # and one 999 holder changes phone (the group fits the cap again: linked).
    w.upsert("crm", "8", email="b@x.com")
    w.upsert("crm", "2", email="c@x.com", phone="222")
    w.upsert("crm", "7", phone="777")
    assert w.run("INCR").ok
    expected -= {("crm:2", "EMAIL", "a@x.com"), ("crm:7", "PHONE", "999")}
    expected |= {("crm:8", "EMAIL", "b@x.com"), ("crm:2", "EMAIL", "c@x.com"), ("crm:7", "PHONE", "777")}
    check(expected, linked={("EMAIL", "b@x.com"), ("PHONE", "999")})
    assert w.partition() == {
        frozenset({"crm:1"}),
        frozenset({"crm:2"}),
        frozenset({"crm:3", "crm:8"}),
        frozenset({"crm:4", "crm:5", "crm:6"}),
        frozenset({"crm:7"}),
    }
