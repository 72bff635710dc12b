"""Where run alerts go (`notify:`: e-mail through SMTP, a webhook, score and memory thresholds) and the
per-run metrics settings (`monitoring:`)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from lake_assets.config.base import StrictModel


class SmtpConfig(StrictModel):
    """SMTP delivery; every value comes from LAKE_SMTP_* variables through interpolation."""

    host: str = ""
    port: int = Field(default=25, gt=0, lt=65536)
    user: str = ""
    password: str = ""
    sender: str = Field(default="lake-assets@localhost", alias="from")
    starttls: bool = False
    timeout_seconds: float = Field(default=10, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NotifyConfig(StrictModel):
    """Where run notifications go: e-mail recipients (through `smtp`) and an optional webhook."""

    email: list[str] = Field(default_factory=list)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    webhook_url: str = ""
    on_completion: bool = True
    ui_base_url: str = "http://127.0.0.1:3000"
    quality_score_min: float | None = Field(
        default=None, ge=0, le=1,
        description="alert when a finished run's quality score is below this share (unset: no score alert)",
    )

    peak_memory_max_mb: int | None = Field(
        default=None, gt=0, description="alert when a run's peak memory is over this many MiB (unset: no alert)",
    )

    @field_validator("quality_score_min", "peak_memory_max_mb", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # An unset environment variable interpolates to "": no threshold.
        return None if value == "" else value

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad}")
        return value


class MonitoringConfig(StrictModel):
    """Per-run metrics settings (docs/orchestration.md, "Metrics in the UI")."""

    storage_price_per_gb_month: float | None = Field(
        default=None, ge=0,
        description="price of one GiB of lake storage per month, for the estimated monthly cost (unset: none)",
    )

    @field_validator("storage_price_per_gb_month", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value
