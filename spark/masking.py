"""PII masking with Spark built-in functions only (no Python UDFs on the per-row path).

Techniques (per column, chosen in config):
* `hmac_sha256` keyed hash: same input + same key -> same output; without the key a dictionary of
  candidate values cannot be matched. Byte-for-byte equal to Python's `hmac.new(key, v, sha256)`.
* `sha256`, `md5`: unkeyed digests, reversible by dictionary attack; only when explicitly configured.
* `last4`: every digit but the last four becomes `*`, separators stay (`***-**-6789`).
* `tokenize`: `tok_<16 hex>_<last4>`; the hex part is an HMAC of the digits under a token key, so
  the same card always gets the same token and the token reveals at most the last four digits.
  The mapping token -> card is kept only in the vault, AES-GCM encrypted (`vault_entries`).
* `redact`: the value becomes `[REDACTED]` (NULL stays NULL).
* `postal_prefix`: keep the first three characters (generalization).
NULL in -> NULL out for every technique.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104)
REDACTED = "[REDACTED]"
TECHNIQUES = ("hmac_sha256", "sha256", "md5", "last4", "tokenize", "redact", "postal_prefix", "keep")


def derive_key(master: str, purpose: str) -> bytes:
    """Independent 32-byte sub-keys (hashing, tokens, vault) from one master secret."""
    return hashlib.sha256(f"lake_assets:{purpose}:".encode() + master.encode("utf-8")).digest()


def hmac_sha256(column: Column, key: bytes) -> Column:
    """HMAC-SHA256 as a hex string, built from `sha2` over binary."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK_SIZE, b"\x00")
    ipad = bytes(b ^ 0x36 for b in key).hex()
    opad = bytes(b ^ 0x5C for b in key).hex()
    inner = F.sha2(F.concat(F.unhex(F.lit(ipad)), column.cast("binary")), 256)
    return F.sha2(F.concat(F.unhex(F.lit(opad)), F.unhex(inner)), 256)


def last4(column: Column) -> Column:
    """Mask every digit that has at least four more digits after it."""
    return F.regexp_replace(column, r"\d(?=(?:\D*\d){4})", "*")


def digits(column: Column) -> Column:
    return F.regexp_replace(column, r"\D", "")


def token_for(column: Column, token_key: bytes) -> Column:
    card = digits(column)
    return F.when(
        column.isNull() | (card == ""), F.lit(None).cast("string")
    ).otherwise(F.concat(F.lit("tok_"), F.substring(hmac_sha256(card, token_key), 1, 16), F.lit("_"), F.substring(card, -4, 4)))


def mask_column(column: Column, technique: str, *, hash_key: bytes, token_key: bytes) -> Column:
    if technique == "hmac_sha256":
        return hmac_sha256(column, hash_key)
    if technique == "sha256":
        return F.sha2(column.cast("binary"), 256)
    if technique == "md5":
        return F.md5(column.cast("binary"))
    if technique == "last4":
        return last4(column)
    if technique == "tokenize":
        return token_for(column, token_key)
    if technique == "redact":
        return F.when(column.isNull(), None).otherwise(F.lit(REDACTED))
    if technique == "postal_prefix":
        return F.substring(column, 1, 3)
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
) -> DataFrame:
    """Mask every column named in `rules` that the frame has; adds `_mask_key_id`."""
    masked = [
        mask_column(F.col(c), rules[c], hash_key=hash_key, token_key=token_key).alias(c) if c in rules else F.col(c)
        for c in df.columns
    ]
    return df.select(*masked, F.lit(key_id).alias("_mask_key_id"))


def vault_entries(df: DataFrame, column: str, *, token_key: bytes, vault_key: bytes) -> DataFrame:
    """Distinct (token, encrypted card) pairs for the token vault; AES-256-GCM, base64 text."""
    card = digits(F.col(column))
    return (
        df.select(token_for(F.col(column), token_key).alias("token"), card.alias("_card"))
        .filter(F.col("token").isNotNull())
        .dropDuplicates(["token"])
        .select(
            "token",
            F.base64(F.aes_encrypt(F.col("_card").cast("binary"), F.lit(vault_key), F.lit("GCM"))).alias(
                "encrypted_value"
            ),
        )
    )


def detokenize(vault: DataFrame, tokens: list[str], *, vault_key: bytes) -> DataFrame:
    """(token, value) for the given tokens; needs the vault key (AES-GCM fails with another key)."""
    return vault.filter(F.col("token").isin(tokens)).select(
        "token",
        F.aes_decrypt(F.unbase64(F.col("encrypted_value")), F.lit(vault_key), F.lit("GCM")).cast("string").alias("value"),
    )
