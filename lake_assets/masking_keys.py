"""Sub-keys derived from the one masking secret. The
secret never leaves this object's repr.

`MaskingKeys.from_config` is called when the asset definitions are built (i.e. before any run step),
so a missing or unusable key stops the run at start. There is no unkeyed fallback anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lake_assets.config import MaskingConfig
from spark.masking import derive_key


class MaskingKeyError(ValueError):
    """The masking key is missing or unusable; the message never contains the key."""


@dataclass(frozen=True)
class MaskingKeys:
    key_id: str
    hash_key: bytes = field(repr=False)
    token_key: bytes = field(repr=False)
    vault_key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str | None, key_id: str) -> MaskingKeys:
        if not secret or len(secret) < 16:
            raise MaskingKeyError(
                f"masking.key (key id {key_id!r}) is missing or shorter than 16 characters: set LAKE_MASKING_KEY "
                "to the long random secret; masking never falls back to an unkeyed hash"
            )
        return cls(
            key_id=key_id,
            hash_key=derive_key(secret, "hash"),
            token_key=derive_key(secret, "token"),
            vault_key=derive_key(secret, "vault"),
        )

    @classmethod
    def from_config(cls, masking: MaskingConfig) -> MaskingKeys:
        return cls.from_secret(masking.key, masking.key_id)
