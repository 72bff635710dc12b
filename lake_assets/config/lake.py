"""Where the lake lives (`lake:`: directory or S3 bucket, Iceberg catalog, KMS key), the Spark that
computes it (`spark:`) and how long each layer keeps its days (`retention_days:`)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from lake_assets.config.base import StrictModel, sqlalchemy_url


class CatalogConfig(StrictModel):
    """The Iceberg SQL catalog that indexes the lake's tables."""

    uri: str = Field(
        default="",
        description="SQLAlchemy URL (sqlite:///…, postgresql+psycopg2://…); empty: sqlite:///<lake>/catalog.db",
    )

    @field_validator("uri")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return sqlalchemy_url(value) if value else value


class LakeConfig(StrictModel):
    url: str = Field(description="Local directory or s3://bucket/prefix")
    catalog: CatalogConfig = Field(default_factory=lambda: CatalogConfig())
    kms_key_id: str = Field(
        default="",
        description="S3 lakes: a KMS key (id or ARN) for SSE-KMS on the bucket and every upload; "
        "empty: SSE-S3 (AES256)",
    )

    @model_validator(mode="after")
    def _s3_needs_a_catalog(self) -> LakeConfig:
        if self.url.startswith("s3://") and not self.catalog.uri:
            raise ValueError(
                "lake.catalog.uri is required for an s3:// lake (a SQLite catalog file cannot live in S3); "
                "set it to a database URL such as postgresql+psycopg2://user@host/db"
            )
        return self


class SparkConfig(StrictModel):
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


LAKE_LAYERS = ("raw", "processed", "masked", "curated", "quarantine", "vault")
# Days a daily partition is kept, per layer. Quarantine holds rejected raw rows (PII included) and is
# kept only long enough to investigate and replay them; the vault maps tokens to encrypted values and
# is kept as long as raw, after which the tokens of older days can no longer be detokenized.
DEFAULT_RETENTION_DAYS = {"raw": 90, "processed": 180, "masked": 180, "curated": 365, "quarantine": 30, "vault": 90}
