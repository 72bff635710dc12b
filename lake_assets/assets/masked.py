"""masked/<entity>: the processed entity with PII masked; the only input of the curated layer.

Grain: same as processed/<entity>. Guarantees: every column named in `masking.columns` (overlaid with
the `mask` of the entity's extra columns in `entities.<entity>`, then `masking.entities.<entity>`) is
masked with its technique; every other column is scanned (names and
every value): an unconfigured column whose values match a PII pattern fails the run (`on_unknown_pii:
fail`, the default) with a message naming the column and the kind of PII, never a value; a column only
named like PII is a warning (log and `pii_name_warnings` metadata); an all-NULL column is never PII.
With `mask` every finding is masked: with the technique of the kind its name shows when the values
agree (or none match), else redacted (free text).
`_mask_key_id` records the key version; `_row_hash` is re-keyed (HMAC) so it cannot be matched
against guessed rows. Tokenized values go to the token vault (`vault/<entity>/<column>/ingest_date=D`),
AES-256-GCM encrypted. The masking key never appears in logs, metadata or errors.
"""


from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, asset
from pyspark.sql import DataFrame

from lake_assets.assets.partitions import daily_partitions
from lake_assets.config import PipelineConfig
from lake_assets.entities import EntitySchema, entity_schemas
from lake_assets.io_managers.spark_lake import write_spark
from lake_assets.masking_keys import MaskingKeys
from lake_assets.resources.lake_storage import LakeStorage
from spark.masking import UNKEYED_TECHNIQUES, apply_masking, vault_entries
from spark.pii_detection import detect_unconfigured_pii, technique_for
from spark.scd2 import ATTR_HASH, attribute_hash


def vault_key_path(entity: str, column: str) -> list[str]:
    return ["vault", entity, column]


def _build_masked_asset(config: PipelineConfig, entity: EntitySchema) -> AssetsDefinition:
    # Built with the definitions: a missing/short key fails before any step runs.
    keys = MaskingKeys.from_config(config.masking)
    configured = config.mask_rules_for(entity.name)  # extra columns' `mask` included

    @asset(
        key=["masked", entity.name],
        group_name="masked",
        ins={"processed": AssetIn(key=["processed", entity.name])},
        partitions_def=daily_partitions(config),
        kinds={"spark", "parquet"},
        description=f"`{entity.name}` with PII masked. Grain: as processed/{entity.name}.",
        metadata={"mask_key_id": keys.key_id},
    )
    def _masked(context: AssetExecutionContext, lake: LakeStorage, processed: DataFrame) -> DataFrame:
        rules = {c: t for c, t in configured.items() if c in processed.columns}
        findings = detect_unconfigured_pii(processed, configured=rules)
        blocking = [f for f in findings if f.blocking]
        name_only = [f for f in findings if not f.blocking]
        if name_only:
            context.log.warning(
                f"masked/{entity.name}: column(s) named like PII, no value matches a PII pattern: "
                + "; ".join(f"{f.column}: {f.reason}" for f in name_only)
                + ". Configure a technique (or `keep`) for them in masking.columns to settle it."
            )
        if blocking and config.masking.on_unknown_pii == "fail":
            described = "; ".join(f"{f.column}: {f.reason}" for f in blocking)
            raise Failure(
                description=f"masked/{entity.name}: unconfigured PII in column(s) "
                f"{', '.join(f.column for f in blocking)} ({described}). Add them to masking.columns "
                "(or masking.entities) with a technique, or set masking.on_unknown_pii: mask.",
                allow_retries=False,
            )
        if config.masking.on_unknown_pii == "mask" and findings:
            context.log.warning(
                "masking unconfigured PII by default: " + "; ".join(f"{f.column}: {f.reason}" for f in findings)
            )
            rules.update({f.column: technique_for(f) for f in findings})
        for column, technique in sorted(rules.items()):
            if technique in UNKEYED_TECHNIQUES:
                context.log.warning(
                    f"{entity.name}.{column}: unkeyed {technique} is explicitly configured; it is reversible by "
                    "dictionary attack (prefer hmac_sha256)"
                )
        vault_rows = 0
        for column in sorted(c for c, t in rules.items() if t == "tokenize"):
            entries = vault_entries(
                processed, column, token_key=keys.token_key, vault_key=keys.vault_key, key_id=keys.key_id
            )
            vault_rows += write_spark(entries, lake, vault_key_path(entity.name, column), context.partition_key).rows
        context.add_output_metadata(
            {
                "masked_columns": ", ".join(f"{c}={t}" for c, t in sorted(rules.items())),
                "mask_key_id": keys.key_id,
                "unconfigured_pii_columns": ", ".join(f.column for f in blocking) or "none",
                "pii_name_warnings": ", ".join(f.column for f in name_only) or "none",
                "vault_entries": vault_rows,
            }
        )
        # ---- SCD2 change detection (curated layer) -------------------------------------------
        # Masking can make two different values equal (`[REDACTED]`, last four digits), so the star
        # schema compares a keyed hash of the unmasked Type-2 attributes, computed here, before masking:
        # `_attr_hash` (HMAC under the hash key) on customer and product; see docs/star_schema.md.
        type2 = config.type2_attributes(entity.name)
        if type2 is not None:
            processed = processed.withColumn(
                ATTR_HASH, attribute_hash([c for c in type2 if c in processed.columns], keys.hash_key)
            )
        # ---------------------------------------------------------------------------------------
        return apply_masking(
            processed, rules, hash_key=keys.hash_key, token_key=keys.token_key, key_id=keys.key_id
        )

    return _masked


def build_masked_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_masked_asset(config, e) for e in entity_schemas(config).values() if config.tables_for_entity(e.name)]
