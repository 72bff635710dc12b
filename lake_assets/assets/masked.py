"""masked/<entity>: the processed entity with PII masked; the only input of the curated layer.

Grain: same as processed/<entity>. Guarantees: every column named in `masking.columns` is masked
with its technique; every other column is scanned (names and values) and an unconfigured PII column
fails the run (`on_unknown_pii: fail`, the default) or is masked by its detected kind (`mask`).
Tokenized values are written to the token vault (`vault/<entity>/<column>/ingest_date=D`),
AES-GCM encrypted. The masking key never appears in logs, metadata or errors.
"""


from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, asset
from pyspark.sql import DataFrame

from lake_assets.assets.partitions import daily_partitions
from lake_assets.config import PipelineConfig
from lake_assets.entities import ENTITIES, EntitySchema
from lake_assets.io_managers.spark_lake import write_spark
from lake_assets.masking_keys import MaskingKeys
from lake_assets.resources.lake_storage import LakeStorage
from spark.masking import apply_masking, vault_entries
from spark.pii_detection import find_unconfigured_pii

# Technique used for an unconfigured column when `on_unknown_pii: mask`, by detected kind.
DEFAULT_TECHNIQUE_BY_KIND = {
    "email": "hmac_sha256",
    "phone": "last4",
    "ssn": "last4",
    "card_number": "tokenize",
    "street_address": "redact",
}


def _technique_for(reason: str) -> str:
    for kind, technique in DEFAULT_TECHNIQUE_BY_KIND.items():
        if kind in reason:
            return technique
    return "redact"


def _build_masked_asset(config: PipelineConfig, entity: EntitySchema) -> AssetsDefinition:
    @asset(
        key=["masked", entity.name],
        group_name="mask",
        ins={"processed": AssetIn(key=["processed", entity.name])},
        partitions_def=daily_partitions(config),
        kinds={"spark", "parquet"},
        description=f"`{entity.name}` with PII masked. Grain: as processed/{entity.name}.",
    )
    def _masked(context: AssetExecutionContext, lake: LakeStorage, processed: DataFrame) -> DataFrame:
        keys = MaskingKeys.from_config(config.masking)
        rules = {c: t for c, t in config.masking.columns.items() if c in processed.columns}
        findings = find_unconfigured_pii(processed, configured=rules)
        if findings:
            described = "; ".join(f"{col}: {why}" for col, why in sorted(findings.items()))
            if config.masking.on_unknown_pii == "fail":
                raise Failure(
                    description=f"masked/{entity.name}: unconfigured PII found ({described}). Add the columns to "
                    "masking.columns (or set masking.on_unknown_pii: mask).",
                    allow_retries=False,
                )
            context.log.warning(f"masking unconfigured PII by default: {described}")
            rules.update({col: _technique_for(why) for col, why in findings.items()})
        for column, technique in rules.items():
            if technique in ("sha256", "md5"):
                context.log.warning(f"{column}: unkeyed {technique} is reversible by dictionary attack")
        for column in [c for c, t in rules.items() if t == "tokenize"]:
            entries = vault_entries(processed, column, token_key=keys.token_key, vault_key=keys.vault_key)
            write_spark(entries, lake, ["vault", entity.name, column], context.partition_key)
        context.add_output_metadata(
            {
                "masked_columns": ", ".join(f"{c}={t}" for c, t in sorted(rules.items())),
                "mask_key_id": keys.key_id,
                "unconfigured_pii_columns": len(findings),
            }
        )
        return apply_masking(
            processed, rules, hash_key=keys.hash_key, token_key=keys.token_key, key_id=keys.key_id
        )

    return _masked


def build_masked_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_masked_asset(config, e) for e in ENTITIES.values() if config.tables_for_entity(e.name)]
