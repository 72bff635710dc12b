"""The warehouse/curated PII scanner: finds e-mails, SSNs and Luhn-valid cards, not hex digests."""

from __future__ import annotations

import hashlib
import hmac

from lake_assets.checks.pii_scan import luhn_valid, pii_kinds, scan_rows


def test_finds_each_kind_in_free_text() -> None:
    assert pii_kinds("paid with 4111 1111 1111 1111 today") == {"card_number"}
    assert pii_kinds("5500-0000-0000-0004") == {"card_number"}
    assert pii_kinds("mail ana@example.com, ssn 123-45-6789") == {"email", "ssn"}
    assert pii_kinds("4111111111111112") == set()  # fails the Luhn check
    assert pii_kinds("***-**-6789") == set()  # masked SSN
    assert pii_kinds("tok_QhZkAbcdEfghIjklMnoP_1111") == set()


def test_hex_digests_are_not_card_numbers() -> None:
    digests = [hmac.new(b"key", str(i).encode(), hashlib.sha256).hexdigest() for i in range(5000)]
    assert [d for d in digests if pii_kinds(d)] == []
    # ...while a real card number glued to punctuation is still found.
    assert pii_kinds("card:4111111111111111;") == {"card_number"}


def test_scan_rows_counts_per_column_without_values() -> None:
    found = scan_rows(["id", "note"], [(1, "x@y.io"), (2, "4111111111111111"), (3, None), (4, "x@y.io")])
    assert found == {"note": {"email": 2, "card_number": 1}}
    assert luhn_valid("79927398713") is False  # valid Luhn but too short for a card


def test_scan_arrow_reads_every_string_column_like_scan_rows() -> None:
    import pyarrow as pa

    from lake_assets.checks.pii_scan import describe_findings, scan_arrow

    digests = [hmac.new(b"key", str(i).encode(), hashlib.sha256).hexdigest() for i in range(2000)]
    notes = [None, "x@y.io", "paid 4111 1111 1111 1111", "ssn 123-45-6789", "4111111111111112", *digests]
    table = pa.table({
        "id": list(range(len(notes))),
        "note": pa.array(notes, pa.large_string()),
        "segment": pa.array(["vip", "a@b.co", *["vip"] * (len(notes) - 2)]).dictionary_encode(),
        "empty": pa.array([None] * len(notes), pa.string()),
    })
    expected = scan_rows(table.column_names, [tuple(r.values()) for r in table.to_pylist()])
    assert scan_arrow(table) == expected == {"note": {"email": 1, "card_number": 1, "ssn": 1},
                                             "segment": {"email": 1}}
    assert describe_findings(expected) == "note: 1 card_number, 1 email, 1 ssn; segment: 1 email"
