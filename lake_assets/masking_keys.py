"""Sub-keys derived from the one masking secret. The secret never leaves this object's repr."""

from __future__ import annotations

from dataclasses import dataclass, field

from lake_assets.config import MaskingConfig
from spark.masking import derive_key


@dataclass(frozen=True)
class MaskingKeys:
    key_id: str
    hash_key: bytes = field(repr=False)
    token_key: bytes = field(repr=False)
    vault_key: bytes = field(repr=False)

    @classmethod
    def from_config(cls, masking: MaskingConfig) -> MaskingKeys:
        return cls(
            key_id=masking.key_id,
            hash_key=derive_key(masking.key, "hash"),
            token_key=derive_key(masking.key, "token"),
            vault_key=derive_key(masking.key, "vault"),
        )
