"""How PII is masked (`masking:`): the key, the technique per column, per-entity overrides."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from lake_assets.config.base import StrictModel
from lake_assets.entities import ENTITY_NAMES

MaskTechnique = Literal["hmac_sha256", "sha256", "md5", "last4", "tokenize", "redact", "postal_prefix", "keep"]


class MaskingConfig(StrictModel):
    key: str = Field(description="Secret for keyed hashing and the token vault; from the environment")
    key_id: str = "k1"
    columns: dict[str, MaskTechnique]
    on_unknown_pii: Literal["fail", "mask"] = "fail"
    # Per-entity overrides of `columns` (e.g. customer postal_code: postal_prefix, store zip kept).
    entities: dict[str, dict[str, MaskTechnique]] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 16:
            raise ValueError("must be at least 16 characters (set LAKE_MASKING_KEY to a long random secret)")
        return value

    @field_validator("key_id")
    @classmethod
    def _key_id_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", value):
            raise ValueError("must be 1-32 letters, digits, '_', '.' or '-' (it is stored with every row)")
        return value

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = sorted(set(value) - ENTITY_NAMES)
        if unknown:
            raise ValueError(f"unknown entities {unknown}; expected some of {sorted(ENTITY_NAMES)}")
        return value

    def rules_for(self, entity: str) -> dict[str, str]:
        """Column -> technique for one entity: global `columns` overlaid with `entities[entity]`."""
        return {**self.columns, **self.entities.get(entity, {})}
