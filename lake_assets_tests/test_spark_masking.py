"""spark/masking.py on small DataFrames: HMAC equals Python's `hmac`, determinism, keyed-ness,
pattern masks, tokens (PCI: at most the last four digits), the encrypted vault and detokenize."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from spark.masking import (
    REDACTED,
    apply_masking,
    derive_key,
    detokenize,
    hmac_sha256,
    last4,
    mask_column,
    token_for,
    vault_entries,
)

KEY = derive_key("unit-test-master-secret-0001", "hash")
OTHER_KEY = derive_key("unit-test-master-secret-0002", "hash")
TOKEN_KEY = derive_key("unit-test-master-secret-0001", "token")
VAULT_KEY = derive_key("unit-test-master-secret-0001", "vault")
OTHER_VAULT_KEY = derive_key("unit-test-master-secret-0002", "vault")
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004"]


def py_hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def one_column(spark, values: list[str | None]):
    return spark.createDataFrame([(i, v) for i, v in enumerate(values)], "id int, v string")


def collect(df, column: str = "m") -> list:
    return [r[column] for r in df.orderBy("id").collect()]


# ------------------------------------------------------------------ keyed hashing
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(max_size=40), min_size=20, max_size=60),
       keys=st.lists(st.binary(min_size=0, max_size=100), min_size=2, max_size=2))
def test_hmac_equals_python_hmac_for_any_text_and_key(spark, values: list[str], keys: list[bytes]) -> None:
    # Unicode (incl. astral planes and NUL), the empty string, and keys longer than the 64-byte block;
    # one Spark job per example keeps the property test fast.
    values = [*values, "", "Chloé.Müller@exämple.com", "😀", "a\x00b"]
    keys = [*keys, KEY, b"k" * 65]
    df = one_column(spark, values)
    rows = df.select("id", *[hmac_sha256(F.col("v"), k).alias(f"m{i}") for i, k in enumerate(keys)]).orderBy("id")
    got = [tuple(r[f"m{i}"] for i in range(len(keys))) for r in rows.collect()]
    assert got == [tuple(py_hmac(k, v) for k in keys) for v in values]


def test_hmac_null_in_null_out_and_non_string_hashes_its_text(spark) -> None:
    df = spark.createDataFrame([(1, None, 12345)], "id int, v string, n int")
    row = df.select(hmac_sha256(F.col("v"), KEY).alias("s"), hmac_sha256(F.col("n"), KEY).alias("i")).first()
    assert row["s"] is None
    assert row["i"] == py_hmac(KEY, "12345")


def test_hmac_is_deterministic_and_depends_on_the_key(spark) -> None:
    emails = [f"user{i}@example.com" for i in range(200)]
    df = one_column(spark, emails)
    first = collect(df.select("id", hmac_sha256(F.col("v"), KEY).alias("m")))
    again = collect(df.repartition(3).select("id", hmac_sha256(F.col("v"), KEY).alias("m")))
    other = collect(df.select("id", hmac_sha256(F.col("v"), OTHER_KEY).alias("m")))
    assert first == again
    assert len(set(first)) == len(emails)
    assert not set(first) & set(other)


def test_dictionary_attack_without_the_key_matches_nothing(spark) -> None:
    # The attacker knows every candidate e-mail and computes unkeyed digests and HMACs under guessed keys.
    emails = [f"user{i}@example.com" for i in range(300)]
    masked = set(collect(one_column(spark, emails).select("id", hmac_sha256(F.col("v"), KEY).alias("m"))))
    guesses = set()
    for e in emails:
        guesses |= {hashlib.sha256(e.encode()).hexdigest(), hashlib.md5(e.encode()).hexdigest()}
        guesses |= {py_hmac(k, e) for k in (b"", b"key", b"secret", OTHER_KEY)}
    assert not masked & guesses
    # ...while the key holder matches every one of them.
    assert masked == {py_hmac(KEY, e) for e in emails}


def test_derived_sub_keys_are_independent_and_key_dependent() -> None:
    keys = {derive_key("secret-aaaaaaaaaaaaaaaa", p) for p in ("hash", "token", "vault")}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    assert derive_key("secret-aaaaaaaaaaaaaaaa", "hash") != derive_key("secret-aaaaaaaaaaaaaaab", "hash")


def test_unkeyed_digests_match_hashlib(spark) -> None:
    df = one_column(spark, ["a@b.co", "", None, "ü"])
    sha = collect(df.select("id", mask_column(F.col("v"), "sha256", hash_key=KEY, token_key=TOKEN_KEY).alias("m")))
    md5 = collect(df.select("id", mask_column(F.col("v"), "md5", hash_key=KEY, token_key=TOKEN_KEY).alias("m")))
    assert sha == [hashlib.sha256(b"a@b.co").hexdigest(), hashlib.sha256(b"").hexdigest(), None,
                   hashlib.sha256("ü".encode()).hexdigest()]
    assert md5 == [hashlib.md5(b"a@b.co").hexdigest(), hashlib.md5(b"").hexdigest(), None,
                   hashlib.md5("ü".encode()).hexdigest()]


# ------------------------------------------------------------------ pattern masks
LAST4_CASES = [
    ("123-45-6789", "***-**-6789"),
    ("+1 (717) 816-1434", "+* (***) ***-1434"),
    ("17178161434", "*******1434"),
    ("1234", "1234"),
    ("12", "12"),
    ("", ""),
    (None, None),
    ("tel: ٣٤٥ 5551234", "tel: ٣٤٥ ***1234"),  # only ASCII digits count as digits
]


def test_last4(spark) -> None:
    df = one_column(spark, [v for v, _ in LAST4_CASES])
    assert collect(df.select("id", last4(F.col("v")).alias("m"))) == [m for _, m in LAST4_CASES]


def test_redact_and_postal_prefix_keep_nulls(spark) -> None:
    df = one_column(spark, ["6874 Oak Ave", None, " 87236 ", "SW1A 1AA"])
    out = df.select(
        "id",
        mask_column(F.col("v"), "redact", hash_key=KEY, token_key=TOKEN_KEY).alias("r"),
        mask_column(F.col("v"), "postal_prefix", hash_key=KEY, token_key=TOKEN_KEY).alias("p"),
    )
    assert collect(out, "r") == [REDACTED, None, REDACTED, REDACTED]
    assert collect(out, "p") == ["687", None, "872", "SW1"]


def test_unknown_technique_is_rejected(spark) -> None:
    with pytest.raises(ValueError, match="unknown masking technique"):
        apply_masking(one_column(spark, ["x"]), {"v": "rot13"}, hash_key=KEY, token_key=TOKEN_KEY, key_id="k1")


# ------------------------------------------------------------------ tokens and the vault
def test_token_shows_at_most_the_last_four_digits(spark) -> None:
    df = one_column(spark, [*CARDS, "4111111111111111", None, "", "n/a", "123"])
    tokens = collect(df.select("id", token_for(F.col("v"), TOKEN_KEY).alias("m")))
    for card, token in zip(CARDS, tokens, strict=False):
        digits = "".join(c for c in card if c.isdigit())
        assert token.startswith("tok_") and token.endswith("_" + digits[-4:])
        assert "".join(c for c in token if c.isdigit()) == digits[-4:]
    # Same card, different formatting -> same token; no digits -> NULL; short numbers show no digits.
    assert tokens[0] == tokens[4]
    assert tokens[5] is None and tokens[6] is None and tokens[7] is None
    assert not any(c.isdigit() for c in tokens[8])
    assert len(set(tokens[:4])) == 4


def test_tokens_depend_on_the_token_key(spark) -> None:
    df = one_column(spark, CARDS)
    mine = collect(df.select("id", token_for(F.col("v"), TOKEN_KEY).alias("m")))
    theirs = collect(df.select("id", token_for(F.col("v"), derive_key("another-secret-xxxxxxxx", "token")).alias("m")))
    assert all(a != b for a, b in zip(mine, theirs, strict=True))


def test_vault_round_trip_with_key_and_nothing_without(spark) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    df = one_column(spark, [*CARDS, CARDS[0], None])
    vault = vault_entries(df, "v", token_key=TOKEN_KEY, vault_key=VAULT_KEY, key_id="k7").cache()
    assert vault.count() == len(CARDS)  # one entry per distinct card
    assert {r["_mask_key_id"] for r in vault.collect()} == {"k7"}
    stored = " ".join(r["encrypted_value"] for r in vault.collect())
    assert not any("".join(c for c in card if c.isdigit()) in stored for card in CARDS)

    tokens = collect(df.select("id", token_for(F.col("v"), TOKEN_KEY).alias("m")))[: len(CARDS)]
    back = {r["token"]: r["value"] for r in detokenize(vault, tokens, vault_key=VAULT_KEY).collect()}
    assert back == {t: "".join(c for c in card if c.isdigit()) for t, card in zip(tokens, CARDS, strict=True)}
    wrong = detokenize(vault, tokens, vault_key=OTHER_VAULT_KEY).collect()
    assert len(wrong) == len(CARDS) and all(r["value"] is None for r in wrong)

    # Standard AES-256-GCM (12-byte IV | ciphertext | 16-byte tag): readable by any AES-GCM implementation
    # with the key, and authentication fails with another key.
    blob = base64.b64decode(vault.filter(F.col("token") == tokens[0]).first()["encrypted_value"])
    assert AESGCM(VAULT_KEY).decrypt(blob[:12], blob[12:], None).decode() == "4111111111111111"
    with pytest.raises(InvalidTag):
        AESGCM(OTHER_VAULT_KEY).decrypt(blob[:12], blob[12:], None)


# ------------------------------------------------------------------ the whole frame
def test_apply_masking_masks_configured_columns_rekeys_row_hash_and_stores_key_id(spark) -> None:
    df = spark.createDataFrame(
        [("C1", "Ana@Example.com", "123-45-6789", "4111111111111111", "Boston", "abc", "k0")],
        "customer_id string, email string, ssn string, card_number string, city string, _row_hash string,"
        " _mask_key_id string",
    )
    rules = {"email": "hmac_sha256", "ssn": "last4", "card_number": "tokenize", "missing_col": "redact"}
    out = apply_masking(df, rules, hash_key=KEY, token_key=TOKEN_KEY, key_id="k2")
    row = out.first().asDict()
    assert out.columns == ["customer_id", "email", "ssn", "card_number", "city", "_row_hash", "_mask_key_id"]
    assert row["customer_id"] == "C1" and row["city"] == "Boston"
    assert row["email"] == py_hmac(KEY, "Ana@Example.com")
    assert row["ssn"] == "***-**-6789"
    assert row["card_number"].endswith("_1111") and "4111111111111111" not in row["card_number"]
    assert row["_row_hash"] == py_hmac(KEY, "abc")
    assert row["_mask_key_id"] == "k2"


def test_every_masked_token_decrypts_from_the_vault_to_its_lines_card_digits(spark) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    # Cards repeated across lines in several formats, text around digits, non-ASCII digits (not digits
    # to `\D`), short numbers, no digits, NULL; two tokenized columns in one frame.
    values = [*CARDS, "4111111111111111", " 4111-1111 1111-1111 ", "card: 5500 0000 0000 0004.", "１２３４5678",
              "123", "n/a", "", None, "6011000000000004"]
    lines = [(i, v, values[(i * 7) % len(values)]) for i, v in enumerate(values * 3)]
    df = spark.createDataFrame(lines, "id int, v string, w string")
    out = apply_masking(df, {"v": "tokenize", "w": "tokenize"}, hash_key=KEY, token_key=TOKEN_KEY, key_id="k3")
    assert out.columns == ["id", "v", "w", "_mask_key_id"]

    def digits_of(value: str | None) -> str:
        return "".join(c for c in value or "" if c in "0123456789")

    def expected_token(value: str | None) -> str | None:
        card = digits_of(value)
        if not card:
            return None
        body = py_hmac(TOKEN_KEY, card)[:20].translate(str.maketrans("0123456789", "ghijklmnop"))
        return f"tok_{body}" + (f"_{card[-4:]}" if len(card) >= 12 else "")

    masked = {r["id"]: (r["v"], r["w"]) for r in out.collect()}
    assert masked == {i: (expected_token(v), expected_token(w)) for i, v, w in lines}

    for column in ("v", "w"):
        vault = {r["token"]: r["encrypted_value"] for r in
                 vault_entries(df, column, token_key=TOKEN_KEY, vault_key=VAULT_KEY, key_id="k3").collect()}
        raw = [line[1 if column == "v" else 2] for line in lines]
        cards = {digits_of(v) for v in raw} - {""}
        assert len(vault) == len(cards)  # one entry per distinct card, none for lines without digits
        for value in raw:
            token = expected_token(value)
            if token is None:
                continue
            blob = base64.b64decode(vault[token])
            assert AESGCM(VAULT_KEY).decrypt(blob[:12], blob[12:], None).decode() == digits_of(value)
