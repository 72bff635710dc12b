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
AES-256-GCM encrypted: one asset per tokenized contract column (group `vault`, same daily partitions),
further outputs of this step, stored by the lake IO manager before the masked rows. Which columns have
a vault, and who may read it: `lake_assets/token_vault.py`. A selection may leave a vault out
(`*warehouse/fact_sales`): the step then stores that vault's partition with the IO manager's own write
(`assets/side_tables.py`), so no token ever lacks its vault entry; the same for a column tokenized
only at run time, which has no asset. The masking key never appears in logs, metadata or errors.
A run over a range of days masks each day on its own, oldest first (each day's PII scan, vault and
commit are that day's; `assets/day_range.py`).
"""


from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetIn, AssetKey, AssetOut, AssetsDefinition, Failure, Output, multi_asset
from pyspark.sql import DataFrame

from lake_assets.assets.day_range import each_day
from lake_assets.assets.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from lake_assets.assets.side_tables import store_side_table
from lake_assets.config import PipelineConfig
from lake_assets.entities import EntitySchema, entity_schemas
from lake_assets.io_managers.partition_range import for_day
from lake_assets.masking_keys import MaskingKeys
from lake_assets.resources.lake_storage import LakeStorage
from lake_assets.token_vault import VAULT_LAYER, vault_columns, vault_key
from spark.masking import UNKEYED_TECHNIQUES, apply_masking, vault_entries
from spark.pii_detection import detect_unconfigured_pii, technique_for
from spark.scd2 import ATTR_HASH, attribute_hash


def _vault_output(column: str) -> str:
    return f"vault_{column}"


def _build_masked_asset(config: PipelineConfig, entity: EntitySchema) -> AssetsDefinition:
    # Built with the definitions: a missing/short key fails before any step runs.
    keys = MaskingKeys.from_config(config.masking)
    configured = config.mask_rules_for(entity.name)  # extra columns' `mask` included
    vaulted = vault_columns(config, entity)
    vault_outs = {
        _vault_output(column): AssetOut(
            is_required=False,  # the step is subsettable: a selection may leave this output out
            key=vault_key(entity.name, column),
            group_name=VAULT_LAYER,
            kinds={"spark", "parquet"},
            description=f"Token vault of masked/{entity.name}.{column}: the card digits behind each token, "
            "AES-256-GCM encrypted under the vault sub-key of the masking key; read only by `detokenize`. "
            "Grain: one row per distinct token of the day.",
            metadata={"mask_key_id": keys.key_id},
        )
        for column in vaulted
    }

    @multi_asset(
        name=f"masked__{entity.name}",
        outs={
            "masked": AssetOut(
                is_required=False,  # the step is subsettable: a selection may leave this output out
                key=["masked", entity.name],
                group_name="masked",
                kinds={"spark", "parquet"},
                description=f"`{entity.name}` with PII masked. Grain: as processed/{entity.name}.",
                metadata={"mask_key_id": keys.key_id},
            ),
            **vault_outs,
        },
        ins={"processed": AssetIn(key=["processed", entity.name])},
        partitions_def=daily_partitions(config),
        backfill_policy=DAILY_BACKFILL_POLICY,
        can_subset=True,
    )
    def _masked(context: AssetExecutionContext, lake: LakeStorage, processed: Any) -> Iterator[Output]:
        yield from each_day(context, lake, lambda day: _mask_day(context, lake, day, for_day(processed, day)))

    def _mask_day(context: AssetExecutionContext, lake: LakeStorage, day: str, processed: DataFrame
                  ) -> Iterator[Output]:
        """One day's rows masked; its vault entries committed before them."""
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
        unvaulted = sorted(c for c, t in rules.items() if t == "tokenize" and c not in vaulted)
        if unvaulted:
            context.log.warning(
                f"masked/{entity.name}: column(s) {', '.join(unvaulted)} are tokenized but are not columns of the "
                "entity's contract, so their vault has no asset of its own: the step stores it directly (detokenize "
                f"reads it as any other). Map them to an entity column or declare them under entities.{entity.name} "
                "with mask: tokenize to make the vault an asset."
            )
        # Every vault is committed before the masked rows: no masked token without its vault entry. A
        # column known only at run time has no asset (no output name); its tokens still need their way back.
        vault_rows = 0
        for column in [*vaulted, *unvaulted]:
            entries = vault_entries(
                processed, column, token_key=keys.token_key, vault_key=keys.vault_key, key_id=keys.key_id
            )
            output = _vault_output(column) if column in vaulted else None
            vault_rows += yield from store_side_table(context, lake, output, vault_key(entity.name, column), entries,
                                                      day)
        metadata: dict[str, str | int] = {
            "masked_columns": ", ".join(f"{c}={t}" for c, t in sorted(rules.items())),
            "mask_key_id": keys.key_id,
            "unconfigured_pii_columns": ", ".join(f.column for f in blocking) or "none",
            "pii_name_warnings": ", ".join(f.column for f in name_only) or "none",
            "vault_entries": vault_rows,
            "vault_without_asset": ", ".join(unvaulted) or "none",
        }
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
        masked = apply_masking(processed, rules, hash_key=keys.hash_key, token_key=keys.token_key, key_id=keys.key_id)
        if AssetKey(["masked", entity.name]) in context.selected_asset_keys:
            yield Output(masked, output_name="masked", metadata=metadata)

    return _masked


def build_masked_assets(config: PipelineConfig) -> list[AssetsDefinition]:
    return [_build_masked_asset(config, e) for e in entity_schemas(config).values() if config.tables_for_entity(e.name)]
