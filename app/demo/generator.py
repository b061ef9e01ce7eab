"""Deterministic synthetic customer data for ``idr demo`` and the benchmark.

One generator serves every scale (2,000 demo records up to 10M benchmark records):
the structure (people, clusters, chains, junk) is drawn with a seeded numpy RNG as
compact integer arrays, handed to DuckDB as an Arrow table, and DuckDB builds the
strings in parallel (``CREATE TABLE ... AS SELECT``). No per-record Python runs.

Three source tables (one per schema), all with an ``updated_at`` watermark:

* ``crm.customers``   customer_id BIGINT, email, phone, first_name, last_name, city
* ``shop.orders``     order_id VARCHAR ('ORD-0000000042'), customer_email, phone_number,
                      loyalty_card, device_id, first_name, last_name, ship_city, order_total
* ``loyalty.members`` member_id VARCHAR ('M42'), loyalty_id, email, mobile, device_id,
                      given_name, family_name, city, tier

What makes it realistic enough to test identity resolution:

* people own 1..20 records (zeta-distributed: most 1-3, a tail of many);
* chains: records linked pairwise, alternately by email and by phone, so a cluster is a
  long path (lengths >= 100 from 100k records up) - the worst case for label propagation;
* formatting noise: emails in mixed case with stray whitespace, phones as
  '+1 (555) 010-1234' / '15550101234' / '+1 555-010-1234' / '1.555.010.1234' (all the
  same digits, so PHONE canonicalization links them);
* junk shared by many records: 'test@test.com' (excluded EXACT), 'noreply@...' (excluded
  LIKE, each group below max_group_size so only the exclusion catches it), '0000000000'
  phones, 'N/A' loyalty cards and empty strings (groups far above max_group_size);
* NULLs and empty strings everywhere.

Every junk group is either far above ``default_max_group_size(records)`` or caught by
an exclusion, and every legitimate group is far below it, so the partition does not
depend on edge cases such as ``>`` vs ``>=`` or whether '' counts as a value.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from app.platforms.base import Adapter


# ------------------------------------------------------------------ vocabulary
def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
    "Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty "
    "Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua "
    "Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald "
    "Rebecca Jason Sharon Edward Laura Jeffrey Cynthia Ryan Dorothy Jacob Amy Gary Kathleen Nicholas "
    "Angela Eric Shirley Jonathan Emma Stephen Brenda Larry Pamela Justin Nicole Scott Anna Brandon "
    "Samantha Benjamin Katherine Samuel Christine Gregory Debra Alexander Rachel Patrick Carolyn Frank "
    "Janet Raymond Maria Jack Olivia Dennis Heather Jerry Helen Tyler Catherine Aaron Diane Jose Julie "
    "Adam Victoria Nathan Joyce Henry Lauren Zachary Kelly Douglas Christina Peter Ruth Kyle Joan Noah "
    "Virginia Ethan Judith Jeremy Evelyn Walter Hannah Christian Andrea Keith Megan Roger Cheryl Terry "
    "Jacqueline Austin Madison Sean Teresa Gerald Abigail Carl Sophia Harold Martha Dylan Sara Arthur "
    "Gloria Lawrence Janice Jordan Kathryn Jesse Ann Bryan Isabella Billy Judy Bruce Charlotte Gabriel "
    "Julia Joe Grace Logan Amber Alan Alice Juan Jean Albert Denise Willie Frances Elijah Danielle Wayne"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans "
    "Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez "
    "Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks "
    "Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers "
    "Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson "
    "Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds "
    "Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens "
    "Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells "
    "Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon"
)
CITIES = _words(
    "Springfield|Riverside|Franklin|Greenville|Bristol|Clinton|Fairview|Salem|Madison|Georgetown|"
    "Arlington|Ashland|Burlington|Manchester|Oxford|Jackson|Milton|Newport|Auburn|Dayton|Lexington|"
    "Milford|Winchester|Hudson|Kingston|Dover|Chester|Marion|Centerville|Lebanon|Portland|Austin|"
    "Denver|Boston|Seattle|Phoenix|Atlanta|Chicago|Houston|Dallas|San Diego|New York|Los Angeles|"
    "Miami|Detroit|Memphis|Nashville|Baltimore|Louisville|Milwaukee|Albuquerque|Tucson|Fresno|"
    "Sacramento|Omaha|Raleigh|Oakland|Tulsa|Cleveland|Wichita",
    "|",
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "example.org")
TIERS = ("BRONZE", "SILVER", "GOLD", "PLATINUM")
# Spellings of the junk values: all canonicalize to 'test@test.com' / '0000000000'.
JUNK_EMAILS = ("test@test.com", "TEST@test.com", " test@test.com ", "Test@Test.com")
JUNK_PHONES = ("0000000000", "000-000-0000", "(000) 000-0000", "000.000.0000")

# Table order is the ``tbl`` code used throughout: 0 crm, 1 shop, 2 loyalty.
TABLES: tuple[tuple[str, str, str], ...] = (
    ("crm_customers", "crm", "customers"),
    ("shop_orders", "shop", "orders"),
    ("loyalty_members", "loyalty", "members"),
)
TABLE_SHARE = (0.30, 0.50, 0.20)

BASE_TS = "2024-01-01 00:00:00"  # updated_at = BASE_TS + ts seconds
YEAR_SECONDS = 365 * 86_400
MAX_PERSON_RECORDS = 16  # keeps every legitimate identifier group well below the smallest cap (25)

# Negative identifier ids are not ids but codes for the special values below.
NULL, JUNK, JUNK2, EMPTY, JUNK3, JUNK4 = -1, -2, -3, -4, -5, -6
PHONE_MOD = 8_000_000_000  # phone digits = '1' + (2e9 + id * A mod 8e9): unique per id < 8e9
PHONE_MUL = 982_451_653  # prime, coprime with 8e9 -> a bijection on [0, 8e9); 8e9 * MUL < 2**63
LOYALTY_MOD = 9_000_000_000  # > every id, so loyalty numbers never repeat
LOYALTY_MUL = 738_219_751  # coprime with 9e9 (no factor 2, 3, 5); 9e9 * MUL < 2**63
DEVICE_MUL = 0x9E3779B97F4A7C15 & 0x7FFFFFFFFFFF  # odd -> bijection mod 2**47 (int64 wrap is harmless)
DEVICE_MASK = (1 << 47) - 1
DELTA_ID_BASE = 1_000_000_000  # make_delta draws fresh ids above every generated id
_EPOCH = datetime(1970, 1, 1)


def default_max_group_size(records: int) -> int:
    """The max_group_size that suits ``records``: 25 up to 250k, 100 at 1M, 1000 at 10M."""
    return int(min(1000, max(25, records // 10_000)))


def junk_group_size(records: int) -> int:
    """Records sharing each junk value: always well above ``default_max_group_size``."""
    return int(max(40, records * 3 // 10_000))


def _phone_parts(col: str) -> str:
    """Area code, exchange, line of a 10-digit number column (printf arguments)."""
    return f"{col} // 10000000, {col} // 10000 % 1000, {col} % 10000"


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    # Only our own constant vocabulary reaches this (no quotes in it); asserted anyway.
    assert all("'" not in v for v in values)
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


# ------------------------------------------------------------------ structure (numpy)
def _person_sizes(rng: np.random.Generator, target: int) -> np.ndarray:
    """Cluster sizes of people summing to exactly ``target`` records (long tail, capped)."""
    if target <= 0:
        return np.zeros(0, dtype=np.int32)
    est = int(target / 1.8) + 16
    sizes = np.minimum(rng.zipf(2.3, size=est), MAX_PERSON_RECORDS).astype(np.int32)
    while sizes.sum() < target:  # rare: top up
        more = np.minimum(rng.zipf(2.3, size=est), MAX_PERSON_RECORDS).astype(np.int32)
        sizes = np.concatenate([sizes, more])
    cs = np.cumsum(sizes, dtype=np.int64)
    n = int(np.searchsorted(cs, target)) + 1
    sizes = sizes[:n]
    sizes[-1] -= int(cs[n - 1] - target)
    return sizes


def _chain_lengths(rng: np.random.Generator, records: int) -> np.ndarray:
    if records >= 100_000:
        long = rng.integers(100, 301, size=max(3, records // 250_000))
    else:
        long = np.full(max(1, records // 1_000), int(np.clip(records // 100, 10, 100)))
    short = rng.integers(3, 21, size=records // 2_000)
    lengths = np.concatenate([long, short]).astype(np.int64)
    # Never let chains eat more than a fifth of the data (tiny record counts).
    keep = np.cumsum(lengths) <= max(records // 5, 3)
    return lengths[keep]


def _phone_digits(ids: np.ndarray) -> np.ndarray:
    """Id -> 10-digit national number (unique per id); special codes pass through."""
    out = 2_000_000_000 + (ids % PHONE_MOD) * PHONE_MUL % PHONE_MOD
    return np.where(ids >= 0, out, ids)


def _loyalty_number(ids: np.ndarray) -> np.ndarray:
    out = 1_000_000_000 + (ids % LOYALTY_MOD) * LOYALTY_MUL % LOYALTY_MOD  # always 10 digits
    return np.where(ids >= 0, out, ids)


def _device_number(ids: np.ndarray) -> np.ndarray:
    out = ((ids & DEVICE_MASK) * DEVICE_MUL) & DEVICE_MASK
    return np.where(ids >= 0, out, ids)


def _pick(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """k distinct elements of pool (Floyd-style via Generator.choice, no full shuffle)."""
    k = min(k, len(pool))
    return pool[rng.choice(len(pool), size=k, replace=False)] if k else pool[:0]


def _structure(records: int, seed: int) -> tuple[pa.Table, dict[str, Any]]:
    """All records as compact integer columns (one row per record, person order)."""
    rng = np.random.default_rng(seed)
    chain_len = _chain_lengths(rng, records)
    n_chain = int(chain_len.sum())
    sizes = _person_sizes(rng, records - n_chain)
    n_people = len(sizes)
    n_owners = n_people + len(chain_len)  # chains are people too (one name each)
    n = records

    # Per owner (person or chain): name, home city, optional second email/phone/device.
    o_first = rng.integers(0, len(FIRST_NAMES), n_owners, dtype=np.int16)
    o_last = rng.integers(0, len(LAST_NAMES), n_owners, dtype=np.int16)
    o_city = rng.integers(0, len(CITIES), n_owners, dtype=np.int16)
    o_email2 = rng.random(n_owners) < 0.15
    o_phone2 = rng.random(n_owners) < 0.10
    o_device2 = rng.random(n_owners) < 0.30

    owner = np.empty(n, dtype=np.int32)
    owner[: n - n_chain] = np.repeat(np.arange(n_people, dtype=np.int32), sizes)
    owner[n - n_chain :] = np.repeat(np.arange(n_people, n_owners, dtype=np.int32), chain_len)
    is_chain = np.zeros(n, dtype=bool)
    is_chain[n - n_chain :] = True

    tbl = rng.choice(3, size=n, p=TABLE_SHARE).astype(np.int8)
    # Source keys: a random permutation per table, so keys do not reveal clusters.
    key = np.empty(n, dtype=np.int64)
    for t in range(3):
        idx = np.flatnonzero(tbl == t)
        key[idx] = rng.permutation(len(idx)) + 1

    u = rng.random(n, dtype=np.float32)
    # Identifier ids: primary = owner, secondary = n_owners + owner, chain ids above 2*n_owners.
    email = np.where(o_email2[owner] & (rng.random(n, dtype=np.float32) < 0.4), n_owners + owner, owner)
    email = email.astype(np.int64)
    email[u < 0.10] = NULL
    email[(u >= 0.10) & (u < 0.13)] = EMPTY
    u = rng.random(n, dtype=np.float32)
    phone = np.where(o_phone2[owner] & (rng.random(n, dtype=np.float32) < 0.4), n_owners + owner, owner)
    phone = phone.astype(np.int64)
    phone[u < 0.28] = NULL
    phone[(u >= 0.28) & (u < 0.30)] = EMPTY
    # Loyalty card: every member row has one; one order in three shows it; crm has no column.
    u = rng.random(n, dtype=np.float32)
    loyalty = owner.astype(np.int64)
    loyalty[((tbl == 1) & (u >= 0.3)) | ((tbl == 2) & (u < 0.03)) | (tbl == 0)] = NULL
    u = rng.random(n, dtype=np.float32)
    device = np.where(o_device2[owner] & (rng.random(n, dtype=np.float32) < 0.5), n_owners + owner, owner)
    device = device.astype(np.int64)
    device[((tbl == 1) & (u >= 0.6)) | ((tbl == 2) & (u >= 0.5)) | (tbl == 0)] = NULL

    # Chains: record i of a chain shares its email with i+1 when i is even, its phone
    # when i is odd -> a path that needs ~length rounds of plain label propagation.
    starts = np.repeat(np.cumsum(chain_len) - chain_len, chain_len)
    pos = np.arange(n_chain, dtype=np.int64) - starts
    chain_base = 2 * n_owners + starts  # unique per chain, room for length/2 + 1 ids
    email[n - n_chain :] = chain_base + pos // 2
    phone[n - n_chain :] = chain_base + (pos + 1) // 2
    loyalty[n - n_chain :] = NULL
    device[n - n_chain :] = NULL

    # Junk, only on non-chain records (chains must stay intact).
    jn = junk_group_size(records)
    free = np.flatnonzero(~is_chain)
    email[_pick(rng, free, jn)] = JUNK  # 'test@test.com' in several spellings
    for code in (JUNK2, JUNK3, JUNK4):  # three 'noreply@...' values, each below the cap
        email[_pick(rng, free, max(3, jn // 4))] = code
    phone[_pick(rng, free, jn)] = JUNK  # '0000000000' in several formats
    phone[_pick(rng, free, jn // 2 + 1)] = JUNK2  # 'N/A' -> '' after PHONE canonicalization
    phone[_pick(rng, free, jn // 2 + 1)] = EMPTY
    card_rows = free[tbl[free] != 0]
    loyalty[_pick(rng, card_rows, jn)] = JUNK  # 'N/A'
    loyalty[_pick(rng, card_rows, jn)] = EMPTY
    device[_pick(rng, card_rows, jn)] = EMPTY

    # Display names: mostly the owner's, sometimes a nickname/typo-like other name or NULL
    # (gives MOST_FREQUENT survivorship something to decide).
    first = o_first[owner].copy()
    last = o_last[owner].copy()
    u = rng.random(n, dtype=np.float32)
    first[u < 0.05] = rng.integers(0, len(FIRST_NAMES), int((u < 0.05).sum()), dtype=np.int16)
    first[(u >= 0.05) & (u < 0.08)] = -1
    u = rng.random(n, dtype=np.float32)
    last[u < 0.04] = -1
    # Cities: people move (RECENCY survivorship), some rows lack a city.
    city = o_city[owner].copy()
    u = rng.random(n, dtype=np.float32)
    moved = u < 0.15
    city[moved] = rng.integers(0, len(CITIES), int(moved.sum()), dtype=np.int16)
    city[(u >= 0.15) & (u < 0.20)] = -1

    cols = {
        "tbl": tbl,
        "k": key,
        "pfirst": o_first[owner],
        "plast": o_last[owner],
        "fn_i": first,
        "ln_i": last,
        "name_fmt": rng.choice(3, size=n, p=(0.9, 0.05, 0.05)).astype(np.int8),
        "email_id": email,
        "email_fmt": rng.choice(6, size=n, p=(0.55, 0.12, 0.12, 0.08, 0.08, 0.05)).astype(np.int8),
        "phone": _phone_digits(phone),
        "phone_fmt": rng.integers(0, 5, n, dtype=np.int8),
        "loyalty": _loyalty_number(loyalty),
        "device": _device_number(device),
        "city": city,
        "ts": rng.integers(0, YEAR_SECONDS, n, dtype=np.int32),
        "amount": rng.integers(100, 50_000, n, dtype=np.int32),
    }
    stats = {
        "people": n_people,
        "chains": len(chain_len),
        "chain_records": n_chain,
        "longest_chain": int(chain_len.max()) if len(chain_len) else 0,
        "largest_person": int(sizes.max()) if len(sizes) else 0,
        "junk_group_size": jn,
    }
    return pa.table(cols), stats


# ------------------------------------------------------------------ strings (DuckDB)
def _value_columns(spec: str) -> str:
    """SELECT list turning the integer spec columns into the shared string columns."""
    fn, ln, ct = _sql_list(FIRST_NAMES), _sql_list(LAST_NAMES), _sql_list(CITIES)
    dom = _sql_list(EMAIL_DOMAINS)
    lfn, lln = _sql_list([x.lower() for x in FIRST_NAMES]), _sql_list([x.lower() for x in LAST_NAMES])
    return f"""
    CASE WHEN fn_i < 0 THEN NULL
         WHEN name_fmt = 1 THEN upper({fn}[fn_i + 1])
         WHEN name_fmt = 2 THEN lower({fn}[fn_i + 1])
         ELSE {fn}[fn_i + 1] END AS first_name,
    CASE WHEN ln_i < 0 THEN NULL
         WHEN name_fmt = 1 THEN upper({ln}[ln_i + 1])
         ELSE {ln}[ln_i + 1] END AS last_name,
    CASE WHEN city < 0 THEN NULL ELSE {ct}[city + 1] END AS city,
    CASE WHEN email_id = {NULL} THEN NULL
         WHEN email_id = {EMPTY} THEN ''
         WHEN email_id = {JUNK} THEN {_sql_list(JUNK_EMAILS)}[email_fmt % {len(JUNK_EMAILS)} + 1]
         WHEN email_id = {JUNK2} THEN 'noreply@shop.example'
         WHEN email_id = {JUNK3} THEN 'noreply@crm.example'
         WHEN email_id = {JUNK4} THEN 'noreply@mailer.example'
         ELSE (CASE email_fmt
                   WHEN 1 THEN upper(e)
                   WHEN 2 THEN upper(e[1]) || e[2:]
                   WHEN 3 THEN ' ' || e
                   WHEN 4 THEN e || '  '
                   WHEN 5 THEN ' ' || upper(e) || ' '
                   ELSE e END)
    END AS email,
    CASE WHEN phone = {NULL} THEN NULL
         WHEN phone = {EMPTY} THEN ''
         WHEN phone = {JUNK2} THEN 'N/A'
         WHEN phone = {JUNK} THEN {_sql_list(JUNK_PHONES)}[phone_fmt % {len(JUNK_PHONES)} + 1]
         ELSE (CASE phone_fmt
                   WHEN 0 THEN '+1 (' || d[1:3] || ') ' || d[4:6] || '-' || d[7:10]
                   WHEN 1 THEN '1' || d
                   WHEN 2 THEN '+1 ' || d[1:3] || '-' || d[4:6] || '-' || d[7:10]
                   WHEN 3 THEN '1.' || d[1:3] || '.' || d[4:6] || '.' || d[7:10]
                   ELSE '+1' || d END)
    END AS phone,
    CASE WHEN loyalty = {NULL} THEN NULL WHEN loyalty = {EMPTY} THEN '' WHEN loyalty = {JUNK} THEN 'N/A'
         ELSE 'LY' || CAST(loyalty AS VARCHAR) END AS loyalty,
    CASE WHEN device = {NULL} THEN NULL WHEN device = {EMPTY} THEN ''
         ELSE 'dev-' || CAST(device AS VARCHAR) END AS device,
    CAST(TIMESTAMP '{BASE_TS}' + to_seconds(ts) AS TIMESTAMP) AS updated_at,
    k, tbl, amount
    FROM (SELECT *, {lfn}[pfirst + 1] || (CASE WHEN email_id % 2 = 0 THEN '.' ELSE '_' END)
                    || {lln}[plast + 1] || CAST(email_id AS VARCHAR) || '@'
                    || {dom}[email_id % {len(EMAIL_DOMAINS)} + 1] AS e,
                 CAST(phone AS VARCHAR) AS d  -- 10 digits for real numbers
          FROM {spec})
    """


def _table_select(t: int, src: str) -> str:
    """Project the shared string columns onto table ``t``'s own layout."""
    if t == 0:
        return (
            f"SELECT k AS customer_id, email, phone, first_name, last_name, city, updated_at FROM {src} "
            "WHERE tbl = 0"
        )
    if t == 1:
        return (
            "SELECT 'ORD-' || lpad(CAST(k AS VARCHAR), 10, '0') AS order_id, email AS customer_email, "
            "phone AS phone_number, loyalty AS loyalty_card, device AS device_id, first_name, last_name, "
            "city AS ship_city, CAST(amount / 100.0 AS DECIMAL(10, 2)) AS order_total, updated_at "
            f"FROM {src} WHERE tbl = 1"
        )
    return (
        "SELECT 'M' || CAST(k AS VARCHAR) AS member_id, loyalty AS loyalty_id, email, phone AS mobile, "
        f"device AS device_id, first_name AS given_name, last_name AS family_name, city, "
        f"{_sql_list(TIERS)}[amount % 4 + 1] AS tier, updated_at FROM {src} WHERE tbl = 2"
    )


def _fqn(t: int) -> str:
    return f"{TABLES[t][1]}.{TABLES[t][2]}"


def _as_adapter(path_or_adapter: str | Path | Adapter) -> tuple[Adapter, bool]:
    if isinstance(path_or_adapter, Adapter):
        return path_or_adapter, False
    from app.platforms.duckdb import DuckDBAdapter

    return DuckDBAdapter.from_path(str(path_or_adapter)), True


def _chunks(table: pa.Table, rows: int) -> list[pa.Table]:
    return [table.slice(i, rows) for i in range(0, max(table.num_rows, 1), rows)]


def generate(path_or_adapter: str | Path | Adapter, records: int, seed: int = 42) -> dict[str, Any]:
    """Create (replace) crm.customers, shop.orders and loyalty.members with ``records`` rows.

    Same ``records`` and ``seed`` -> identical table contents. Returns stats: rows per
    table, people, chains, longest chain, junk group size and seconds.
    """
    if records < 10:
        raise ValueError("records must be >= 10")
    t0 = time.perf_counter()
    adapter, owned = _as_adapter(path_or_adapter)
    try:
        spec, stats = _structure(records, seed)
        t_struct = time.perf_counter() - t0
        for _, schema, _ in TABLES:
            adapter.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        # Chunks of 2M rows keep DuckDB's string building memory flat at 10M records. The
        # table filter (tbl = t) is pushed into the Arrow scan, so each row's strings are
        # built once, for its own table.
        name = "_idr_demo_spec"
        for i, chunk in enumerate(_chunks(spec, 2_000_000)):
            adapter.register_arrow(name, chunk)
            try:
                for t in range(3):
                    sel = _table_select(t, f"(SELECT {_value_columns(name)})")
                    if i == 0:
                        adapter.execute(f"CREATE OR REPLACE TABLE {_fqn(t)} AS {sel}")
                    else:
                        adapter.execute(f"INSERT INTO {_fqn(t)} {sel}")
            finally:
                _unregister(adapter, name)
        del spec
        for t, (table_id, _, _) in enumerate(TABLES):
            stats[f"rows_{table_id}"] = int(adapter.scalar(f"SELECT count(*) FROM {_fqn(t)}"))
        stats["records"] = records
        stats["seed"] = seed
        stats["structure_seconds"] = round(t_struct, 3)
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        return stats
    finally:
        if owned:
            adapter.close()


def _unregister(adapter: Adapter, name: str) -> None:
    unregister = getattr(adapter, "unregister", None)
    if unregister is not None:
        unregister(name)


# ------------------------------------------------------------------ delta for INCR runs
_ALL_SRC = """
    SELECT 0 AS tbl, customer_id AS k, email, phone, CAST(NULL AS VARCHAR) AS loyalty,
           CAST(NULL AS VARCHAR) AS device FROM crm.customers
    UNION ALL SELECT 1, CAST(substr(order_id, 5) AS BIGINT), customer_email, phone_number, loyalty_card,
           device_id FROM shop.orders
    UNION ALL SELECT 2, CAST(substr(member_id, 2) AS BIGINT), email, mobile, loyalty_id, device_id
           FROM loyalty.members
"""

_KEY_SQL = {0: "customer_id", 1: "order_id", 2: "member_id"}
_KEY_FROM_INT = {
    0: "k",
    1: "'ORD-' || lpad(CAST(k AS VARCHAR), 10, '0')",
    2: "'M' || CAST(k AS VARCHAR)",
}
_KEY_INT = {
    0: "customer_id",
    1: "CAST(substr(order_id, 5) AS BIGINT)",
    2: "CAST(substr(member_id, 2) AS BIGINT)",
}
_EMAIL_COL = {0: "email", 1: "customer_email", 2: "email"}
_PHONE_COL = {0: "phone", 1: "phone_number", 2: "mobile"}
_CITY_COL = {0: "city", 1: "ship_city", 2: "city"}


def make_delta(adapter: Adapter, fraction: float, seed: int) -> dict[str, Any]:
    """Change about ``fraction`` of all records in place, all with a newer ``updated_at``.

    Mix (of the changed rows): 30% brand-new people (1-3 records each), 10% new records
    that join an existing record's cluster (copy its email or phone), 10% new records that
    bridge two existing clusters (email of one, phone of another), 25% existing records
    whose identifiers change (fresh phone, which can split a chain; email copied from
    another record, which merges; email removed), 25% existing records with attribute
    changes only. Keys of updated records stay the same. Deterministic for the same
    database state and ``seed``. Returns counts per kind and seconds.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    max_keys = [
        int(adapter.scalar(f"SELECT coalesce(max({_KEY_INT[t]}), 0) FROM {_fqn(t)}")) for t in range(3)
    ]
    total = sum(int(adapter.scalar(f"SELECT count(*) FROM {_fqn(t)}")) for t in range(3))
    max_ts = adapter.scalar(
        "SELECT max(m) FROM (SELECT max(updated_at) m FROM crm.customers UNION ALL "
        "SELECT max(updated_at) FROM shop.orders UNION ALL SELECT max(updated_at) FROM loyalty.members)"
    )
    n = max(1, round(fraction * total))
    n_fresh, n_join, n_bridge = int(n * 0.30), int(n * 0.10), int(n * 0.10)
    n_upd_ident = int(n * 0.25)
    n_upd_attr = n - n_fresh - n_join - n_bridge - n_upd_ident
    # New timestamps: the day after the newest record, so every watermark sees them.
    day = (max_ts - _EPOCH).days + 1 if max_ts is not None else 0
    new_base = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d %H:%M:%S")
    # Fresh identifier ids for this delta: distinct per delta day (60 deltas before reuse).
    id_base = DELTA_ID_BASE + (day % 60) * 100_000_000

    # --- new records (fresh people, joiners, bridges) share one spec
    fresh_sizes = rng.integers(1, 4, size=max(1, n_fresh // 2))
    fresh_sizes = fresh_sizes[np.cumsum(fresh_sizes) <= n_fresh]
    n_fresh = int(fresh_sizes.sum())
    n_new = n_fresh + n_join + n_bridge
    owner = np.concatenate(
        [np.repeat(np.arange(len(fresh_sizes)), fresh_sizes), len(fresh_sizes) + np.arange(n_join + n_bridge)]
    ).astype(np.int64)
    n_owner = int(owner.max()) + 1 if n_new else 0
    tbl = rng.choice(3, size=n_new, p=TABLE_SHARE).astype(np.int8)
    key = np.zeros(n_new, dtype=np.int64)
    for t in range(3):
        idx = np.flatnonzero(tbl == t)
        key[idx] = max_keys[t] + 1 + np.arange(len(idx))
    o_first = rng.integers(0, len(FIRST_NAMES), n_owner, dtype=np.int16)
    o_last = rng.integers(0, len(LAST_NAMES), n_owner, dtype=np.int16)
    ids = id_base + owner
    email = ids.copy()
    phone = _phone_digits(ids)
    loyalty = np.where(tbl == 0, NULL, _loyalty_number(ids))
    device = np.where(tbl == 0, NULL, _device_number(ids))
    # Joiners get only the copied identifier; bridges get email of A and phone of B (below).
    email[n_fresh:] = NULL
    phone[n_fresh:] = NULL
    loyalty[n_fresh:] = NULL
    device[n_fresh:] = NULL
    spec = pa.table(
        {
            "tbl": tbl,
            "k": key,
            "pfirst": o_first[owner],
            "plast": o_last[owner],
            "fn_i": o_first[owner],
            "ln_i": o_last[owner],
            "name_fmt": np.zeros(n_new, dtype=np.int8),
            "email_id": email,
            "email_fmt": rng.integers(0, 6, n_new, dtype=np.int8),
            "phone": phone,
            "phone_fmt": rng.integers(0, 5, n_new, dtype=np.int8),
            "loyalty": loyalty,
            "device": device,
            "city": rng.integers(0, len(CITIES), n_new, dtype=np.int16),
            "ts": rng.integers(0, 3_600, n_new, dtype=np.int32),
            "amount": rng.integers(100, 50_000, n_new, dtype=np.int32),
        }
    )
    # References to existing records: (row, a_tbl, a_key, b_tbl, b_key, what).
    a_tbl, a_key = _sample_existing(rng, max_keys, n_join + n_bridge)
    b_tbl, b_key = _sample_existing(rng, max_keys, n_join + n_bridge)
    what = np.concatenate([rng.integers(0, 2, n_join), np.full(n_bridge, 2)]).astype(np.int8)
    refs = pa.table(
        {
            "row_tbl": tbl[n_fresh:],
            "row_k": key[n_fresh:],
            "a_tbl": a_tbl,
            "a_k": a_key,
            "b_tbl": b_tbl,
            "b_k": b_key,
            "what": what,  # 0 copy email of A, 1 copy phone of A, 2 email of A + phone of B
        }
    )
    ts_shift = f"(TIMESTAMP '{new_base}' - TIMESTAMP '{BASE_TS}')"  # an INTERVAL
    adapter.register_arrow("_idr_delta_spec", spec)
    adapter.register_arrow("_idr_delta_refs", refs)
    try:
        adapter.execute(
            "CREATE OR REPLACE TEMP TABLE _idr_delta_new AS SELECT * REPLACE "
            f"(updated_at + {ts_shift} AS updated_at) FROM (SELECT {_value_columns('_idr_delta_spec')})"
        )
        adapter.execute(
            "CREATE OR REPLACE TEMP TABLE _idr_delta_refv AS "
            "SELECT r.row_tbl, r.row_k, r.what, a.email AS a_email, a.phone AS a_phone, b.phone AS b_phone "
            "FROM _idr_delta_refs r "
            f"LEFT JOIN ({_ALL_SRC}) a ON a.tbl = r.a_tbl AND a.k = r.a_k "
            f"LEFT JOIN ({_ALL_SRC}) b ON b.tbl = r.b_tbl AND b.k = r.b_k"
        )
        adapter.execute(
            "UPDATE _idr_delta_new n SET "
            "email = CASE WHEN r.what IN (0, 2) THEN r.a_email END, "
            "phone = CASE WHEN r.what = 1 THEN r.a_phone WHEN r.what = 2 THEN r.b_phone END "
            "FROM _idr_delta_refv r WHERE n.tbl = r.row_tbl AND n.k = r.row_k"
        )
        for t in range(3):
            cols = ", ".join(adapter.columns(TABLES[t][1], TABLES[t][2]))
            adapter.execute(
                f"INSERT INTO {_fqn(t)} ({cols}) SELECT {cols} FROM ({_table_select(t, '_idr_delta_new')})"
            )
    finally:
        for name in ("_idr_delta_spec", "_idr_delta_refs"):
            _unregister(adapter, name)
        adapter.execute("DROP TABLE IF EXISTS _idr_delta_new")
        adapter.execute("DROP TABLE IF EXISTS _idr_delta_refv")

    # --- updates of existing records (distinct keys, so each row is updated once)
    n_upd = n_upd_ident + n_upd_attr
    u_tbl, u_key = _sample_existing(rng, max_keys, n_upd, distinct=True)
    n_upd = len(u_key)
    action = np.full(n_upd, 3, dtype=np.int8)  # 3 = attributes only
    n_ident = min(n_upd_ident, n_upd)
    # 0 fresh phone, 1 email copied from another record, 2 email removed
    action[:n_ident] = rng.choice(3, size=n_ident, p=(0.5, 0.3, 0.2))
    c_tbl, c_key = _sample_existing(rng, max_keys, n_upd)
    new_phone_ids = id_base + n_owner + np.arange(n_upd, dtype=np.int64)
    upd = pa.table(
        {
            "tbl": u_tbl,
            "k": u_key,
            "action": action,
            "c_tbl": c_tbl,
            "c_k": c_key,
            "new_phone": _phone_digits(new_phone_ids),
            "new_city": rng.integers(0, len(CITIES), n_upd, dtype=np.int16),
            "ts": rng.integers(0, 3_600, n_upd, dtype=np.int32),
        }
    )
    adapter.register_arrow("_idr_delta_upd", upd)
    try:
        adapter.execute(
            "CREATE OR REPLACE TEMP TABLE _idr_delta_updv AS SELECT u.*, "
            f"printf('+1 (%03d) %03d-%04d', {_phone_parts('new_phone')}) AS phone_str, "
            f"{_sql_list(CITIES)}[new_city + 1] AS city_str, c.email AS c_email, "
            f"TIMESTAMP '{new_base}' + to_seconds(ts) AS new_ts "
            f"FROM _idr_delta_upd u LEFT JOIN ({_ALL_SRC}) c ON c.tbl = u.c_tbl AND c.k = u.c_k"
        )
        for t in range(3):
            e, p, c = _EMAIL_COL[t], _PHONE_COL[t], _CITY_COL[t]
            adapter.execute(
                f"UPDATE {_fqn(t)} AS s SET "
                f"{p} = CASE WHEN v.action = 0 THEN v.phone_str ELSE s.{p} END, "
                f"{e} = CASE WHEN v.action = 1 THEN v.c_email WHEN v.action = 2 THEN NULL ELSE s.{e} END, "
                f"{c} = CASE WHEN v.action = 3 THEN v.city_str ELSE s.{c} END, "
                "updated_at = v.new_ts "
                f"FROM (SELECT *, {_KEY_FROM_INT[t]} AS key_v FROM _idr_delta_updv WHERE tbl = {t}) v "
                f"WHERE s.{_KEY_SQL[t]} = v.key_v"
            )
    finally:
        _unregister(adapter, "_idr_delta_upd")
        adapter.execute("DROP TABLE IF EXISTS _idr_delta_updv")
    return {
        "changed": n_new + n_upd,
        "new_fresh": n_fresh,
        "new_joining": n_join,
        "new_bridging": n_bridge,
        "updated_identifiers": n_ident,
        "updated_attributes": n_upd - n_ident,
        "updated_at_from": new_base,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _sample_existing(
    rng: np.random.Generator, max_keys: list[int], k: int, distinct: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """k existing records (table code, integer key); keys are dense 1..max per table."""
    total = sum(max_keys)
    if total == 0 or k == 0:
        return np.zeros(0, dtype=np.int8), np.zeros(0, dtype=np.int64)
    if distinct:
        flat = rng.choice(total, size=min(k, total), replace=False).astype(np.int64)
    else:
        flat = rng.integers(0, total, size=k, dtype=np.int64)
    bounds = np.cumsum(max_keys)
    tbl = np.searchsorted(bounds, flat, side="right").astype(np.int8)
    key = flat - np.concatenate([[0], bounds[:-1]])[tbl] + 1
    return tbl, key.astype(np.int64)


# ------------------------------------------------------------------ configuration
def demo_config(max_group_size: int | None = None, records: int = 2_000) -> dict[str, Any]:
    """An IdrConfig document for exactly the generated tables.

    ``max_group_size`` defaults to ``default_max_group_size(records)``: big enough for
    every real person, small enough to skip every junk group.
    """
    cap = max_group_size or default_max_group_size(records)
    tid = [t[0] for t in TABLES]
    sources = [
        {"table_id": tid[0], "table_fqn": "crm.customers", "entity_key_expr": "customer_id"},
        {"table_id": tid[1], "table_fqn": "shop.orders", "entity_key_expr": "order_id"},
        {"table_id": tid[2], "table_fqn": "loyalty.members", "entity_key_expr": "member_id"},
    ]
    for s in sources:
        s |= {"entity_type": "PERSON", "watermark_column": "updated_at", "watermark_lookback_minutes": 0}
    mappings = [
        (tid[0], "EMAIL", "email"),
        (tid[0], "PHONE", "phone"),
        (tid[1], "EMAIL", "customer_email"),
        (tid[1], "PHONE", "phone_number"),
        (tid[1], "LOYALTY_ID", "loyalty_card"),
        (tid[1], "DEVICE_ID", "device_id"),
        (tid[2], "LOYALTY_ID", "loyalty_id"),
        (tid[2], "EMAIL", "email"),
        (tid[2], "PHONE", "mobile"),
        (tid[2], "DEVICE_ID", "device_id"),
    ]
    attrs = {
        tid[0]: {"first_name": "first_name", "last_name": "last_name", "city": "city", "email": "email",
                 "phone": "phone"},
        tid[1]: {"first_name": "first_name", "last_name": "last_name", "city": "ship_city",
                 "email": "customer_email", "phone": "phone_number"},
        tid[2]: {"first_name": "given_name", "last_name": "family_name", "city": "city", "email": "email",
                 "phone": "mobile"},
    }
    return {
        "sources": sources,
        "source_trust": [
            {"table_id": tid[0], "source_name": "CRM", "trust_rank": 1},
            {"table_id": tid[2], "source_name": "Loyalty program", "trust_rank": 2},
            {"table_id": tid[1], "source_name": "Web shop", "trust_rank": 3},
        ],
        "rules": [
            {"rule_id": "email_exact", "rule_name": "Same email", "priority": 1, "identifier_type": "EMAIL",
             "canonicalize": "EMAIL", "max_group_size": cap},
            {"rule_id": "phone_exact", "rule_name": "Same phone", "priority": 2, "identifier_type": "PHONE",
             "canonicalize": "PHONE", "max_group_size": cap},
            {"rule_id": "loyalty_exact", "rule_name": "Same loyalty card", "priority": 3,
             "identifier_type": "LOYALTY_ID", "canonicalize": "NONE", "max_group_size": cap},
            {"rule_id": "device_exact", "rule_name": "Same device", "priority": 4,
             "identifier_type": "DEVICE_ID", "canonicalize": "NONE", "max_group_size": cap},
        ],
        "identifier_mappings": [
            {"table_id": t, "identifier_type": it, "identifier_value_expr": e} for t, it, e in mappings
        ],
        "exclusions": [
            {"identifier_type": "EMAIL", "identifier_value_pattern": "test@test.com", "match_type": "EXACT",
             "reason": "QA placeholder address"},
            {"identifier_type": "EMAIL", "identifier_value_pattern": "noreply@%", "match_type": "LIKE",
             "reason": "System sender addresses, not people"},
        ],
        "attribute_mappings": [
            {"table_id": t, "attribute_name": name, "attribute_expr": expr}
            for t, m in attrs.items()
            for name, expr in m.items()
        ],
        "survivorship_rules": [
            {"attribute_name": "first_name", "strategy": "MOST_FREQUENT"},
            {"attribute_name": "last_name", "strategy": "MOST_FREQUENT"},
            {"attribute_name": "city", "strategy": "RECENCY"},
            {"attribute_name": "email", "strategy": "SOURCE_PRIORITY",
             "source_priority_list": f"{tid[0]},{tid[2]},{tid[1]}"},
            {"attribute_name": "phone", "strategy": "RECENCY"},
        ],
        "settings": {"large_cluster_threshold": str(max(50, cap))},
    }
