"""PII masking with Spark built-in functions only (no Python UDFs on the per-row path).

Grain: one output row per input row; only the configured columns change, plus `_mask_key_id`.

Techniques (per column, chosen in config):
* `hmac_sha256` keyed hash, lower-case hex: same input + same key -> same output; without the key a
  dictionary of candidate values cannot be matched. Byte-for-byte equal to Python's
  `hmac.new(key, value.encode("utf-8"), sha256).hexdigest()` (the value is hashed as its UTF-8 text).
* `sha256`, `md5`: unkeyed digests, reversible by dictionary attack; only when explicitly configured
  (the masked asset logs a warning for each such column).
* `last4`: every digit but the last four becomes `*`, separators stay (`***-**-6789`).
* `tokenize`: `tok_<20 letters>_<last4>`. The letter part is an HMAC of the card digits under the
  token key, written in the alphabet a-p (hex with digits mapped to letters), so the same card always
  gets the same token, the token cannot be computed without the key, and the only digits a token
  contains are the card's last four (PCI DSS: at most the last four). Values with fewer than 12
  digits (not a card) show no digits at all. The token -> card mapping exists only in the token vault,
  AES-256-GCM encrypted (`vault_entries`), readable with `detokenize` and the vault key.
* `redact`: the value becomes `[REDACTED]`.
* `postal_prefix`: keep the first three characters (generalization).
* `keep`: unchanged (an explicit decision that a column named like PII is not PII).
NULL in -> NULL out for every technique.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104)
REDACTED = "[REDACTED]"
TECHNIQUES = ("hmac_sha256", "sha256", "md5", "last4", "tokenize", "redact", "postal_prefix", "keep")
UNKEYED_TECHNIQUES = ("sha256", "md5")
TOKEN_PREFIX = "tok_"
TOKEN_BODY_CHARS = 20  # 80 bits: collisions need ~2^40 distinct cards
MIN_CARD_DIGITS_FOR_LAST4 = 12
KEY_ID_COLUMN = "_mask_key_id"
_CARD_DIGITS_PREFIX = "\u0001card_digits_"  # a helper column's name no delivered column can have


def derive_key(master: str, purpose: str) -> bytes:
    """Independent 32-byte sub-keys (hashing, tokens, vault) from one master secret.

    SHA-256 over a per-purpose label and the secret (domain separation): knowing one sub-key reveals
    neither the master nor the other sub-keys. Changing this changes every hash and token ever
    written: bump `masking.key_id` if it is ever changed.
    """
    return hashlib.sha256(f"lake_assets:{purpose}:".encode() + master.encode("utf-8")).digest()


def _utf8(column: Column) -> Column:
    # Through string first: casting an int straight to binary would hash its 4-byte encoding.
    return column.cast("string").cast("binary")


def hmac_sha256(column: Column, key: bytes) -> Column:
    """HMAC-SHA256 (RFC 2104) of the column's UTF-8 text as lower-case hex, from `sha2` over binary."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK_SIZE, b"\x00")
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = F.sha2(F.concat(F.unhex(F.lit(ipad)), _utf8(column)), 256)
    return F.sha2(F.concat(F.unhex(F.lit(opad)), F.unhex(inner)), 256)


def last4(column: Column) -> Column:
    """Mask every digit that has at least four more digits after it; separators and letters stay."""
    return F.regexp_replace(column.cast("string"), r"\d(?=(?:\D*\d){4})", "*")


def digits(column: Column) -> Column:
    """The ASCII digits of the column's text, in order (`\\D` is every other character)."""
    text = column.cast("string")
    # Text that is digits already (a standardized card number) comes back as is: deleting the ten digits
    # with `translate` tells it apart several times faster than the regular expression rewrites it.
    return F.when(F.translate(text, "0123456789", "") == "", text).otherwise(F.regexp_replace(text, r"\D", ""))


def token_for(column: Column, token_key: bytes) -> Column:
    """`tok_<letters>_<last4>` for the digits of `column`; NULL when it holds no digit."""
    return token_for_digits(digits(column), token_key)


def token_for_digits(card: Column, token_key: bytes) -> Column:
    """`token_for` of a column that holds only digits (`digits(...)`), NULL for NULL and ""; `card` is
    read four times, so pass a column, not an expression to recompute (`apply_masking` projects the
    digits first)."""
    body = F.translate(F.substring(hmac_sha256(card, token_key), 1, TOKEN_BODY_CHARS), "0123456789", "ghijklmnop")
    tail = F.when(F.length(card) >= MIN_CARD_DIGITS_FOR_LAST4, F.concat(F.lit("_"), F.substring(card, -4, 4)))
    token = F.concat(F.lit(TOKEN_PREFIX), body, F.coalesce(tail, F.lit("")))
    return F.when(card.isNull() | (card == ""), F.lit(None).cast("string")).otherwise(token)


def mask_column(column: Column, technique: str, *, hash_key: bytes, token_key: bytes) -> Column:
    """One column masked with one technique (see the module docstring)."""
    if technique == "hmac_sha256":
        return hmac_sha256(column, hash_key)
    if technique == "sha256":
        return F.sha2(_utf8(column), 256)
    if technique == "md5":
        return F.md5(_utf8(column))
    if technique == "last4":
        return last4(column)
    if technique == "tokenize":
        return token_for(column, token_key)
    if technique == "redact":
        return F.when(column.isNull(), F.lit(None).cast("string")).otherwise(F.lit(REDACTED))
    if technique == "postal_prefix":
        return F.substring(F.trim(column.cast("string")), 1, 3)
    if technique == "keep":
        return column
    raise ValueError(f"unknown masking technique {technique!r}; expected one of {TECHNIQUES}")


def apply_masking(
    df: DataFrame,
    rules: Mapping[str, str],
    *,
    hash_key: bytes,
    token_key: bytes,
    key_id: str,
    rehash_columns: Sequence[str] = ("_row_hash",),
) -> DataFrame:
    """Mask every column named in `rules` that the frame has; add `_mask_key_id`.

    `rehash_columns` (default `_row_hash`, an unkeyed digest over the unmasked business columns)
    are replaced by their HMAC under the hash key: equal rows still get equal hashes, but the digest
    can no longer be matched against guessed rows without the key.
    """
    unknown = sorted(set(rules.values()) - set(TECHNIQUES))
    if unknown:
        raise ValueError(f"unknown masking technique(s) {unknown}; expected one of {TECHNIQUES}")
    # A token reads the card digits four times: they are projected once first, under a name of their
    # own, and the token is built from that column (Spark keeps the two projections apart, as it does
    # for any costly expression used more than once, so the digits are computed once per row).
    tokenized = [n for n in df.columns if rules.get(n) == "tokenize"]
    card_digits = {n: f"{_CARD_DIGITS_PREFIX}{i}" for i, n in enumerate(tokenized)}
    if card_digits:
        df = df.select("*", *[digits(F.col(f"`{n}`")).alias(d) for n, d in card_digits.items()])
    out = []
    for name in df.columns:
        column = F.col(f"`{name}`")
        if name in card_digits:
            column = token_for_digits(F.col(f"`{card_digits[name]}`"), token_key)
        elif name in rules:
            column = mask_column(column, rules[name], hash_key=hash_key, token_key=token_key)
        elif name in rehash_columns:
            column = hmac_sha256(column, hash_key)
        if name != KEY_ID_COLUMN and name not in card_digits.values():
            out.append(column.alias(name))
    return df.select(*out, F.lit(key_id).alias(KEY_ID_COLUMN))


def vault_entries(
    df: DataFrame, column: str, *, token_key: bytes, vault_key: bytes, key_id: str
) -> DataFrame:
    """Distinct (token, encrypted card, key id) rows for the token vault.

    Grain: one row per distinct card number (its digits), and so per distinct token: a token is a
    function of the digits (`token_for`, as in the masked column), and two cards share one only if
    their 80-bit token bodies and last four digits collide. `encrypted_value` is AES-256-GCM (random
    IV, authenticated) of the card digits, base64 text: readable only with the vault key. The lines
    are reduced to their distinct digits before anything is hashed or encrypted: a day's lines repeat
    few cards, so the keyed hash runs once per card, not once per line.
    """
    cards = (
        df.select(digits(F.col(f"`{column}`")).alias("_card"))
        .filter(F.col("_card") != "")  # NULL and digit-less values have no token
        .distinct()
    )
    return cards.select(
        token_for_digits(F.col("_card"), token_key).alias("token"),
        F.base64(F.aes_encrypt(F.col("_card").cast("binary"), F.lit(vault_key), F.lit("GCM"))).alias(
            "encrypted_value"
        ),
        F.lit(key_id).alias(KEY_ID_COLUMN),
    )


def detokenize(vault: DataFrame, tokens: Sequence[str], *, vault_key: bytes) -> DataFrame:
    """(token, value) for the given tokens found in the vault.

    `value` is NULL when the entry cannot be decrypted with `vault_key` (wrong key: GCM
    authentication fails) - never garbage, never an exception that could echo ciphertext.
    """
    return vault.filter(F.col("token").isin(list(tokens))).select(
        "token",
        F.try_aes_decrypt(F.unbase64(F.col("encrypted_value")), F.lit(vault_key), F.lit("GCM"))
        .cast("string")
        .alias("value"),
    )
