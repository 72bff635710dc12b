"""Pipeline configuration: one YAML file, `${VAR}` / `${VAR:-default}` interpolation, typed objects.

The file comes from `LAKE_CONFIG` (default: the bundled `sample_config.yaml`). Every error names the
file, the key path and what was expected, and is raised at load time, before any asset runs.
Secrets (masking key, passwords, tokens) are read from the environment through interpolation; the
config never stores a default for them. Which variables each key referenced is kept
(`PipelineConfig.env_variables`), so resources receive secrets as Dagster `EnvVar`s (lake_assets/secrets.py),
and config errors never echo a URL's password, the masking key or the SMTP password.

One module per section of the file: `lake`, `warehouse` (+ `tls`), `sources` (+ `mapping`, how a table
feeds an entity), `derived`, `masking`, `standardize`, `star_schema`, `extras` (`entities:`), `schedule`
(jobs, sensor, retention, backups, retries), `notifications`, `quality` (check severities and declared
column rules); `pipeline` holds the whole document and the checks across sections, `loading` reads the
file. This package exports the names the rest of the code uses.
"""

from lake_assets.config.base import ConfigError
from lake_assets.config.derived import (
    DERIVED_SOURCE,
    DerivedSourceConfig,
    DerivedTableConfig,
    FeedSourceConfig,
    sql_references,
    view_name,
)
from lake_assets.config.lake import LAKE_LAYERS, SparkConfig
from lake_assets.config.loading import BUNDLED_CONFIG, load_config
from lake_assets.config.masking import MaskingConfig
from lake_assets.config.notifications import NotifyConfig
from lake_assets.config.pipeline import PipelineConfig
from lake_assets.config.quality import FRESHNESS_LAYERS, QualityConfig, Severity
from lake_assets.config.schedule import RetriesConfig, SensorConfig
from lake_assets.config.sources import (
    ApiEndpointConfig,
    ApiSourceConfig,
    DatabaseSourceConfig,
    DatabaseTableConfig,
    FileSourceConfig,
    FileTableConfig,
    SourceKindConfig,
    TableConfig,
)
from lake_assets.config.standardize import EntityStandardizeConfig
from lake_assets.config.tls import TlsConfig
from lake_assets.config.warehouse import RowLevelSecurityConfig, WarehouseConfig

__all__ = [
    "BUNDLED_CONFIG",
    "DERIVED_SOURCE",
    "FRESHNESS_LAYERS",
    "LAKE_LAYERS",
    "ApiEndpointConfig",
    "ApiSourceConfig",
    "ConfigError",
    "DatabaseSourceConfig",
    "DatabaseTableConfig",
    "DerivedSourceConfig",
    "DerivedTableConfig",
    "EntityStandardizeConfig",
    "FeedSourceConfig",
    "FileSourceConfig",
    "FileTableConfig",
    "MaskingConfig",
    "NotifyConfig",
    "PipelineConfig",
    "QualityConfig",
    "RetriesConfig",
    "RowLevelSecurityConfig",
    "SensorConfig",
    "Severity",
    "SourceKindConfig",
    "SparkConfig",
    "TableConfig",
    "TlsConfig",
    "WarehouseConfig",
    "load_config",
    "sql_references",
    "view_name",
]
