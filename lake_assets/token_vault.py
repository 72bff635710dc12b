"""The token vault: where the token -> card mapping lives, and which tokenized columns have one.

Grain: `vault/<entity>/<column>` is one lake table per tokenized column, daily partitioned
(`ingest_date=D`, the masked run's day), one row per distinct card (and so per token) of that day:
the token, the card digits AES-256-GCM encrypted under the vault sub-key of the masking key
(`spark/masking.py`, `vault_entries`) and `_mask_key_id`.

Guarantees:
* Each vault table is a Dagster asset of its own (group `vault`), an output of the `masked/<entity>`
  step, stored by the lake IO manager like every other lake table: one commit per partition, a rerun
  of the day replaces it. The step commits the vault before the masked rows, so no masked token is
  ever readable without its vault entry.
* A vault exists for each column of the entity's contract (its own and its configured extra columns)
  whose masking rule is `tokenize`: the set is known when the definitions load, as Dagster needs
  for an asset. A column tokenized only at run time (an unmapped delivered column that a global
  `masking.columns` rule or `on_unknown_pii: mask` tokenizes) cannot be a declared asset: the step
  stores its vault in the same `vault/<entity>/<column>` table with the IO manager's own write
  (`assets/side_tables.py`), before the masked rows, warns and names it (`vault_without_asset`);
  `detokenize` resolves its tokens like any other.
* Readable only with the masking key, and only through `detokenize` (`lake_assets/detokenize.py`): no
  asset reads a vault table, so no later layer, warehouse load or BI role ever sees it. Its assets are
  tagged `pii: true` (encrypted card numbers).
* Kept `retention_days.vault` days (`lake_assets/lake_maintenance/retention.py`).
"""

from __future__ import annotations

from lake_assets.config import PipelineConfig
from lake_assets.entities import EntitySchema

VAULT_LAYER = "vault"


def vault_key(entity: str, column: str) -> list[str]:
    """The asset key path (and lake table) of one column's vault: `vault/<entity>/<column>`."""
    return [VAULT_LAYER, entity, column]


def vault_columns(config: PipelineConfig, entity: EntitySchema) -> list[str]:
    """The entity's contract columns masked with `tokenize`, sorted: one vault asset each."""
    rules = config.mask_rules_for(entity.name)
    return sorted(c for c in entity.columns if rules.get(c) == "tokenize")
