"""`detokenize`: authorized lookup of card numbers behind tokens, from the encrypted token vault.

    LAKE_MASKING_KEY=... python -m lake_assets.detokenize --entity sale --column card_number tok_..._1234

Prints `token<TAB>value` per token found. Needs the masking key (from the environment, through the
pipeline config): entries are AES-256-GCM encrypted under a sub-key of it, and another key cannot
decrypt them (GCM authentication fails; the value is never garbage). Exit status: 0 all tokens
resolved, 1 some token unknown or undecryptable, 2 usage/config error. The key is never printed.
Every use is reported on stderr (who, how many tokens) for the audit trail.
It reads the vault tables (`vault/<entity>/<column>`, every committed day) straight from the lake,
outside Dagster: they are assets of the masked step, and no asset reads them (lake_assets/token_vault.py).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from functools import reduce

from lake_assets.config import ConfigError, load_config
from lake_assets.masking_keys import MaskingKeyError, MaskingKeys
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.token_vault import vault_key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detokenize",
        description="Resolve card tokens (tok_...) to the original values from the encrypted token vault. "
        "Requires the masking key (LAKE_MASKING_KEY) of the pipeline config.",
    )
    parser.add_argument("tokens", nargs="+", help="tokens to resolve")
    parser.add_argument("--entity", default="sale", help="entity whose vault to read (default: sale)")
    parser.add_argument("--column", default="card_number", help="tokenized column (default: card_number)")
    parser.add_argument("--config", default=None, help="pipeline config file (default: LAKE_CONFIG or bundled)")
    return parser


def resolve(
    tokens: Sequence[str], *, entity: str, column: str, config_path: str | None = None
) -> dict[str, str | None]:
    """{token: value or None (unknown token or wrong key)} for every requested token."""
    from pyspark.sql import SparkSession

    from lake_assets.io_managers.spark_lake import read_spark
    from lake_assets.resources.spark import spark_conf_for
    from spark.masking import detokenize

    config = load_config(config_path)
    keys = MaskingKeys.from_config(config.masking)
    lake = LakeStorage(url=config.lake.url, catalog_uri=config.lake.catalog.uri)
    vault_path = vault_key(entity, column)
    partitions = lake.committed_partitions(vault_path)
    if not partitions:
        raise LookupError(f"no token vault at {lake.uri(lake.dataset_dir(vault_path))}")
    builder = SparkSession.builder.appName("lake_assets_detokenize")
    for name, value in spark_conf_for(config.spark).items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    vault = reduce(lambda a, b: a.unionByName(b), [read_spark(spark, lake, vault_path, p) for p in partitions])
    found = {r["token"]: r["value"] for r in detokenize(vault, tokens, vault_key=keys.vault_key).collect()}
    return {token: found.get(token) for token in tokens}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        resolved = resolve(args.tokens, entity=args.entity, column=args.column, config_path=args.config)
    except (ConfigError, MaskingKeyError, LookupError) as exc:
        print(f"detokenize: {exc}", file=sys.stderr)
        return 2
    unresolved = [t for t, v in resolved.items() if v is None]
    print(
        f"detokenize: user {getpass.getuser()!r} resolved {len(resolved) - len(unresolved)} of {len(resolved)} "
        f"token(s) from vault/{args.entity}/{args.column}",
        file=sys.stderr,
    )
    for token, value in resolved.items():
        if value is not None:
            print(f"{token}\t{value}")
    if unresolved:
        print(
            f"detokenize: {len(unresolved)} token(s) unknown or not decryptable with this masking key "
            f"(wrong key or key id?): {', '.join(unresolved)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
