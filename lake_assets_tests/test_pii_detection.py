"""spark/pii_detection.py: name patterns, value patterns (e-mail, SSN, Luhn-valid cards) on small
DataFrames, agreement with the pure-Python scanner used on curated/warehouse tables, and findings
that never contain values."""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from lake_assets.checks.pii_scan import luhn_valid as py_luhn_valid
from lake_assets.checks.pii_scan import scan_rows as py_scan_rows
from spark.pii_detection import (
    contains_card_number,
    default_mask_rules,
    detect_unconfigured_pii,
    find_unconfigured_pii,
    luhn_valid,
    pii_kind_by_name,
    scan_values,
)


def test_pii_kind_by_name() -> None:
    assert pii_kind_by_name("e_mail") == "email"
    assert pii_kind_by_name("contact_email") == "email"
    assert pii_kind_by_name("mobile") == "phone"
    assert pii_kind_by_name("social_security") == "ssn"
    assert pii_kind_by_name("cc_num") == "card_number"
    assert pii_kind_by_name("street") == "street_address"
    assert pii_kind_by_name("segment") is None
    assert pii_kind_by_name("updated_at") is None


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(numbers=st.lists(st.text(alphabet="0123456789", min_size=1, max_size=22), min_size=30, max_size=60))
def test_spark_luhn_agrees_with_python(spark, numbers: list[str]) -> None:
    known = ["4111111111111111", "4111111111111112", "79927398713", "0000000000000", "5500000000000004",
             "340000000000009", "6011000000000004", "12345678901234567890"]
    values = numbers + known
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    got = [r["ok"] for r in df.select("i", luhn_valid(F.col("v")).alias("ok")).orderBy("i").collect()]
    assert got == [py_luhn_valid(v) for v in values]


VALUE_CASES = [
    ("pay with 4111 1111 1111 1111 today", True),
    ("4111-1111-1111-1111", True),
    ("4111111111111112", False),  # Luhn-invalid
    ("ref 1234 then 4111111111111111", True),  # the second candidate counts
    ("order 0000000000000", True),  # 13 zeros are Luhn-valid: better a false alarm than a leak
    ("************1111", False),  # already masked
    ("tok_abcdefghijklmnopabcd_1111", False),
    (hmac.new(b"k", b"x", hashlib.sha256).hexdigest(), False),
    (None, False),
]


def test_contains_card_number(spark) -> None:
    df = spark.createDataFrame([(i, v) for i, (v, _) in enumerate(VALUE_CASES)], "i int, v string")
    got = [r["c"] for r in df.select("i", F.coalesce(contains_card_number(F.col("v")), F.lit(False)).alias("c"))
           .orderBy("i").collect()]
    assert got == [expected for _, expected in VALUE_CASES]


def test_hex_digests_never_look_like_cards(spark) -> None:
    # 0.4% of random 64-hex digests hold a Luhn-valid 13-19 digit run that a digit-bounded pattern flags.
    naive = re.compile(r"(?<![\d*])(?:\d[ -]?){12,18}\d(?![\d*])")
    digests = [hmac.new(b"k", str(i).encode(), hashlib.sha256).hexdigest() for i in range(5000)]
    tricky = [h for h in digests if any(py_luhn_valid(m.group(0)) for m in naive.finditer(h))]
    assert len(tricky) >= 5
    df = spark.createDataFrame([(h,) for h in tricky], "v string")
    assert scan_values(df, ["v"]) == {}


def test_scan_values_counts_per_kind_and_type(spark) -> None:
    df = spark.createDataFrame(
        [("ana@example.com", "ssn 123-45-6789", 4111111111111111, "nothing"),
         ("x", "1234-56-789", None, "call 555-1234"),
         (None, "987-65-4321 and bob@x.org", 42, "")],
        "a string, b string, n bigint, c string",
    )
    assert scan_values(df, df.columns) == {"a": {"email": 1}, "b": {"ssn": 2, "email": 1}, "n": {"card_number": 1}}
    assert scan_values(df, ["c"]) == {}


def test_unconfigured_pii_by_name_and_by_value_never_shows_values(spark) -> None:
    df = spark.createDataFrame(
        [("C1", "ana@example.com", "ana2@example.org", "123-45-6789", "fine", "x@y.zz")],
        "customer_id string, email string, notes string, e_mail_2 string, segment string, _source_file string",
    )
    findings = {f.column: f for f in detect_unconfigured_pii(df, configured=["email"])}
    assert set(findings) == {"notes", "e_mail_2"}  # configured and `_` columns are not candidates
    assert (findings["notes"].by, findings["notes"].kind) == ("values", "email")
    assert (findings["e_mail_2"].by, findings["e_mail_2"].kind, findings["e_mail_2"].name_kind) == (
        "values", "ssn", "email")
    reasons = find_unconfigured_pii(df, configured=["email"])
    assert reasons == {"e_mail_2": "name looks like email; values look like ssn (1 rows)",
                       "notes": "values look like email (1 rows)"}
    assert not any("@" in r or "6789" in r for r in reasons.values())
    assert find_unconfigured_pii(df, configured=["email", "notes", "e_mail_2"]) == {}


def test_scan_covers_every_row_by_default(spark) -> None:
    rows = [(f"note {i}",) for i in range(20_000)] + [("contact me: late@example.com",)]
    df = spark.createDataFrame(rows, "notes string").coalesce(1)
    assert find_unconfigured_pii(df, configured=[]) == {"notes": "values look like email (1 rows)"}
    assert find_unconfigured_pii(df, configured=[], sample_rows=100) == {}


def test_name_rules_match_tokens_not_substrings() -> None:
    for name in ("card_number", "cardnumber", "card_no", "cc_num", "cc_number", "credit_card", "creditcard_no",
                 "payment_card", "card", "pan", "card_pan"):
        assert pii_kind_by_name(name) == "card_number", name
    for name in ("credit_limit", "credit_score", "card_type", "card_brand", "card_last4", "cardinality",
                 "discard_reason", "scorecard_id", "pan_size", "hotel", "class_name"):
        assert pii_kind_by_name(name) is None, name
    assert [pii_kind_by_name(n) for n in ("home_phone", "tel", "fax_no", "customer_ssn", "ssn_last4")] == [
        "phone", "phone", "phone", "ssn", "ssn"]


def test_person_name_columns_get_redact_by_default_other_names_nothing() -> None:
    people = ["first_name", "last_name", "firstname", "full_name", "given_name", "family_name", "middle_name",
              "maiden_name", "surname", "forename", "customer_name", "contact_name", "nickname", "billing_last_name"]
    things = ["name", "product_name", "store_name", "company_name", "supplier_name", "class_name", "file_name",
              "username", "category", "first_order", "last_modified"]
    assert default_mask_rules(people + things) == dict.fromkeys(people, "redact")


def test_all_null_columns_are_never_pii_whatever_their_name(spark) -> None:
    # The processed layer adds every entity column the source does not deliver as NULL.
    df = spark.createDataFrame(
        [("L1", None, None, None, ""), ("L2", None, None, None, "  ")],
        "sale_line_id string, card_number string, ssn string, notes string, e_mail string",
    )
    assert detect_unconfigured_pii(df, configured=[]) == []  # blank text holds no PII either


def test_name_only_matches_warn_value_matches_block(spark) -> None:
    df = spark.createDataFrame(
        [("C1", "VIP desk", "4111 1111 1111 1111", "078-05-1120", "ana@example.com"),
         ("C2", "n/a", None, None, "call later")],
        "customer_id string, phone_ext string, card_no string, tax_id string, remarks string",
    )
    findings = {f.column: f for f in detect_unconfigured_pii(df, configured=[])}
    assert set(findings) == {"phone_ext", "card_no", "tax_id", "remarks"}
    # A phone has no value pattern: a filled phone-named column blocks; a card name whose values hold
    # no card number only warns.
    assert all(f.blocking for f in findings.values())
    assert findings["phone_ext"].reason == (
        "name looks like phone and the column holds values (no value pattern can clear it)"
    )
    assert (findings["card_no"].kind, findings["card_no"].name_kind) == ("card_number", "card_number")
    assert findings["card_no"].reason == "name looks like card_number; values look like card_number (1 rows)"
    assert (findings["tax_id"].kind, findings["remarks"].kind) == ("ssn", "email")
    assert findings["remarks"].name_kind is None


def test_realistic_card_adjacent_columns_raise_nothing(spark) -> None:
    # What a payments table really holds next to (or instead of) a card number.
    rows = [
        ("O1", Decimal("2500.00"), "VISA", 3, 712, "12/27", "Jane Roe", "1111"),
        ("O2", Decimal("15000.00"), "Mastercard", 17, 655, "01/26", "J. Smith", "0004"),
        ("O3", None, "AMEX", 1, None, None, None, None),
    ]
    df = spark.createDataFrame(
        rows,
        "order_id string, credit_limit decimal(12,2), card_type string, cardinality int, credit_score int, "
        "card_expiry string, cardholder string, card_last4 string",
    )
    assert find_unconfigured_pii(df, configured=[]) == {}


def test_a_card_named_column_without_card_numbers_warns(spark) -> None:
    df = spark.createDataFrame([("C1", "ORD-1001"), ("C2", "ORD-1002")], "customer_id string, card_no string")
    [finding] = detect_unconfigured_pii(df, configured=[])
    assert (finding.column, finding.by, finding.blocking) == ("card_no", "name", False)


def test_numbers_are_scanned_for_every_kind_their_text_can_hold(spark) -> None:
    # A card number stored as a number is still a card; a 12-digit decimal cannot hold one, and a
    # card-named decimal with values only warns. The row with the card is the last of many.
    card = Decimal("4111111111111111")
    rows = [(i, Decimal(i), Decimal("1.50"), Decimal(i)) for i in range(3000)]
    rows.append((4111111111111111, card, Decimal("9999999999.99"), card))
    df = spark.createDataFrame(
        rows, "ref bigint, amount decimal(19,0), price decimal(12,2), card_no decimal(16,0)"
    ).coalesce(1)
    findings = {f.column: f for f in detect_unconfigured_pii(df, configured=[])}
    assert {c: (f.by, f.counts) for c, f in findings.items()} == {
        "ref": ("values", (("card_number", 1),)),
        "amount": ("values", (("card_number", 1),)),
        "card_no": ("values", (("card_number", 1),)),
    }
    priced = spark.createDataFrame([(Decimal("12.00"),), (None,)], "card_number decimal(12,2)")
    [warning] = detect_unconfigured_pii(priced, configured=[])
    assert (warning.column, warning.by, warning.blocking) == ("card_number", "name", False)
    empty = spark.createDataFrame([(None,), (None,)], "card_number decimal(12,2)")
    assert detect_unconfigured_pii(empty, configured=[]) == []


def test_the_shortest_matches_of_each_pattern_are_found(spark) -> None:
    # Each pattern's regex runs only on values long enough and holding its literal character: values at
    # that edge must still count.
    values = ["a@b.cc", "123-45-6789", "4222222222222", "422222222222", "a-b", "x@y"]
    df = spark.createDataFrame([(v,) for v in values], "notes string")
    assert scan_values(df, ["notes"]) == {"notes": {"email": 1, "ssn": 1, "card_number": 1}}


def test_card_counts_are_luhn_valid_runs_only_whatever_else_the_column_holds(spark) -> None:
    # Candidates (13-19 digit runs) are re-read and Luhn-checked apart from the first pass: a column of
    # invalid runs only, a column mixing valid and invalid runs, and one of e-mails and SSNs beside a valid
    # card must each count exactly what the Python scanner of warehouse rows finds.
    valid, invalid = "4111111111111111", "4111111111111112"
    rows = [
        (f"order {invalid}", f"paid with {valid}", "ana@example.com"),
        (f"ref {invalid}/1", f"card {invalid}", f"123-45-6789 then {valid}"),
        ("short 411111111111", f"{valid} and {invalid}", None),
        (None, "4111 1111 1111 1111", "plain"),
    ]
    df = spark.createDataFrame(rows, "refs string, notes string, mixed string")
    expected = py_scan_rows(df.columns, rows)
    assert expected == {"notes": {"card_number": 3}, "mixed": {"card_number": 1, "email": 1, "ssn": 1}}
    assert scan_values(df, df.columns) == expected
    # A sample is the same rows in both passes: of the first two rows, one holds a valid card in `notes`.
    assert scan_values(df.coalesce(1), ["notes"], sample_rows=2) == {"notes": {"card_number": 1}}
