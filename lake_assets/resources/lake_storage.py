"""Lake storage: every dataset is an Apache Iceberg table in a SQL catalog (pyiceberg).

Naming: an asset key `<layer>/<a>/<b>` is the table `<a>__<b>` in the namespace `<layer>` (raw,
processed, masked, curated, quarantine, vault). One namespace level keeps the names valid for every
engine (Athena/Glue and Trino's Hive-style catalogs have no nested namespaces).

Layout of one table (warehouse location = the lake URL)::

    <layer>/<a>/<b>/metadata/*.metadata.json, snap-*.avro, *-m0.avro    (Iceberg metadata)
    <layer>/<a>/<b>/ingest_date=YYYY-MM-DD/batch-<id>/part-*.parquet     (daily tables)
    <layer>/<a>/<b>/sale_date=YYYY-MM-DD/batch-<id>/part-*.parquet       (curated/fact_sales)
    <layer>/<a>/<b>/batch-<id>/part-*.parquet                            (unpartitioned tables)

Guarantees:
* Daily tables are partitioned by identity on the date column `ingest_date`. The data files carry it
  (added on write when the data has no such column, and dropped again on read), so `add_files` can
  derive each file's partition from its statistics.
* A write puts its Parquet files in a fresh `batch-<id>` directory, then ONE catalog transaction drops
  the partition's (or unpartitioned table's) current files, adds the new ones, evolves the schema when
  new columns arrive (`union_by_name`) and records the partition's commit record (rows, batch id, the
  caller's state) as a table property. Readers see the previous snapshot or the new one, never a mix;
  a crash before the commit leaves the previous snapshot and an orphan directory.
* A table partitioned on a date column of its own data (curated/fact_sales: `sale_date`) is written
  with `staged_partitions`: the files of every date staged (one per writing task and date), then ONE transaction
  replaces every date the write holds rows of (or names in `replace`), with one commit record per date.
* Replaced files stay on disk: older snapshots (time travel, readers planning the previous snapshot)
  still reference them. Only snapshot expiry followed by orphan removal may delete them.
* Concurrent writers: the catalog swap is optimistic. A writer whose commit loses the race re-reads
  the table and retries when the other writer changed other partitions; when the other writer
  committed the same partition after this write started (its commit record changed, or pyiceberg's
  validation finds new files under the delete filter), it fails with `LakeWriteConflict` (a
  `CommitFailedException`) instead of silently overwriting it or adding its files beside the other's.
* Reads plan files through the catalog (partition filter, column statistics); nothing lists
  directories.
* On S3 data files are uploaded through boto3 with server-side encryption (SSE-S3, AES256); pyiceberg
  writes the metadata files itself, so the bucket's default encryption must be on (see
  docs/storage.md). `AWS_ENDPOINT_URL` is honoured (MinIO, moto).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationError,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo, In
from sqlalchemy.exc import DBAPIError

from lake_assets.resources.s3 import s3_client, s3_filesystem
from lake_assets.secrets import SECRET_FIELD, with_password

PARTITION_COLUMN = "ingest_date"
PARTITION_PREFIX = f"{PARTITION_COLUMN}="
COMMIT_PROPERTY = "lake.commit"  # `lake.commit.<day>` on daily tables, `lake.commit` on the others
HIDDEN_PROPERTY = "lake.hidden-columns"  # columns the lake added on write and drops on read
SNAPSHOT_BATCH = "lake.batch-id"  # snapshot summary property: which write produced the snapshot
SPOOL_DIR = ".spool"  # under a local lake's root: data files of writes not yet handed to the lake
S3_SPOOL_DIR = "lake_assets-spool"  # the same for S3 lakes, under the machine's temp directory
# A spool untouched this long belongs to a process that died (a delivery writes its chunks as it goes,
# and none takes a day): the next spool removes it.
ABANDONED_SPOOL_AGE = timedelta(hours=24)
COMMIT_ATTEMPTS = 8
CATALOG_OPEN_ATTEMPTS = 5


class LakeDataNotFound(FileNotFoundError):
    """A dataset or partition that has never been committed."""


class LakeWriteConflict(CommitFailedException):
    """Another writer committed the same partition (or unpartitioned table) while this write ran."""


@dataclass(frozen=True)
class CommitInfo:
    """The last commit of one partition (or of an unpartitioned table)."""

    batch_id: str
    rows: int
    committed_at: str
    state: dict[str, Any] = field(default_factory=dict)
    snapshot_id: int | None = None


def _remove_abandoned_spools(spool_root: str, untouched_since: datetime) -> None:
    """Remove the spool directories under `spool_root` whose newest file (or the directory itself) was
    last modified before `untouched_since`."""
    for entry in os.scandir(spool_root):
        if not entry.is_dir(follow_symlinks=False):
            continue
        try:
            times = [entry.stat().st_mtime]
            for folder, _, names in os.walk(entry.path):
                times += [os.stat(os.path.join(folder, n)).st_mtime for n in names]
        except FileNotFoundError:
            continue  # its own step just removed it
        if datetime.fromtimestamp(max(times), timezone.utc) < untouched_since:
            shutil.rmtree(entry.path, ignore_errors=True)


def new_batch_id() -> str:
    """A write's id: its start time (UTC, to the second) and a random suffix; names its batch directory."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class FileBounds:
    """One current data file and the (lower, upper) bounds of one string column in it, from the table's
    manifests (no data file opened). A bound is None when the manifest has none (no statistics, or an
    upper bound that could not be truncated): the file may then hold any value."""

    path: str
    partition: str
    lower: str | None
    upper: str | None


def table_name(key_path: Sequence[str]) -> tuple[str, str]:
    """(namespace, table) of an asset key path: the layer, then the rest joined by `__`."""
    if len(key_path) < 2:
        raise ValueError(f"lake key {'/'.join(key_path)!r} needs a layer and a name, e.g. raw/<source>/<table>")
    return key_path[0], "__".join(key_path[1:])


def _iceberg_safe(schema: pa.Schema) -> pa.Schema:
    """The schema the table is created/evolved with: every column optional, microsecond timestamps.

    Optional columns let a later write omit a column; Iceberg (format 2) has no nanosecond type.
    """
    return pa.schema([pa.field(f.name, _iceberg_type(f.type), nullable=True) for f in schema])


def _iceberg_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(t) and t.unit != "us":
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_dictionary(t):
        return _iceberg_type(t.value_type)
    if pa.types.is_null(t):
        return pa.string()  # an all-null column says nothing about its type
    return t


def _conform_for_write(table: pa.Table, existing: pa.Schema | None) -> pa.Table:
    """Cast columns Iceberg cannot store as they are (ns timestamps, dictionaries, all-null columns)."""
    columns, fields = [], []
    for f, column in zip(table.schema, table.columns, strict=True):
        target = _iceberg_type(f.type)
        if pa.types.is_null(f.type) and existing is not None and f.name in existing.names:
            target = existing.field(f.name).type
        columns.append(column if target == f.type else column.cast(target, safe=False))
        fields.append(pa.field(f.name, target, nullable=f.nullable))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _plain(schema: pa.Schema) -> pa.Schema:
    """Iceberg's Arrow schema with the large string/binary/list types Parquet readers give back as plain."""

    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_binary(t):
            return pa.binary()
        if pa.types.is_large_list(t):
            return pa.list_(plain(t.value_type))
        return t

    return pa.schema([pa.field(f.name, plain(f.type), nullable=True) for f in schema])


# Parsed table metadata by the location of its metadata file, least recently used first. Iceberg never
# rewrites a metadata file (each commit writes a new one, named with a fresh UUID), so an entry can only
# be stale by no longer being current, which `load_table` asks the catalog every time.
_TABLE_METADATA: OrderedDict[str, Any] = OrderedDict()
_TABLE_METADATA_ENTRIES = 256


def _remember_metadata(location: str, metadata: Any) -> None:
    _TABLE_METADATA[location] = metadata
    _TABLE_METADATA.move_to_end(location)
    while len(_TABLE_METADATA) > _TABLE_METADATA_ENTRIES:
        _TABLE_METADATA.popitem(last=False)


def _open_sql_catalog(properties: dict[str, str]) -> Any:
    """pyiceberg's `SqlCatalog`, surviving other processes creating the catalog tables at the same time.

    pyiceberg checks for its tables, then creates the missing ones; the steps of a multi-process run
    all open the catalog at once on a new lake, so another process may create them in between and
    this one's CREATE TABLE fails ("already exists", or a unique violation on PostgreSQL's type
    catalog). The tables exist then, so opening again succeeds.
    """
    from pyiceberg.catalog.sql import SqlCatalog

    for attempt in range(CATALOG_OPEN_ATTEMPTS):
        try:
            return SqlCatalog("lake", **properties)
        except DBAPIError:
            if attempt == CATALOG_OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class LakeStorage(ConfigurableResource):
    """Where the lake lives (`./.lake` or `s3://bucket/prefix`) and the Iceberg catalog that indexes it.

    `catalog_uri` is a SQLAlchemy URL. Empty: `sqlite:///<lake>/catalog.db` for a local lake; an S3
    lake needs one (a SQLite file cannot live in S3), e.g. `postgresql+psycopg2://…`. Its password may
    come as `catalog_password` (a Dagster `EnvVar` when the config read it from the environment).
    S3 credentials are never config: boto3 and Arrow read the standard AWS chain (AWS_* variables,
    profile, instance role).
    """

    url: str
    catalog_uri: str = ""
    catalog_password: str | None = Field(
        default=None, description="the catalog URL's password (replaces one in `catalog_uri`)",
        json_schema_extra=SECRET_FIELD,
    )
    sse: str = "AES256"
    kms_key_id: str = ""  # set: uploads use SSE-KMS with this key instead of `sse`

    _fs: Any = PrivateAttr(default=None)
    _s3: Any = PrivateAttr(default=None)
    _catalog: Any = PrivateAttr(default=None)

    # ---------------------------------------------------------------- locations
    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    @property
    def _root(self) -> str:
        if self.is_s3:
            return self.url[len("s3://") :].rstrip("/")
        return str(Path(self.url).expanduser().resolve())

    @property
    def bucket(self) -> str:
        return self._root.split("/", 1)[0]

    def dataset_dir(self, key_path: Sequence[str], partition: str | None = None) -> str:
        """Filesystem path (bucket/prefix/... on S3) of one table's location or one partition of it."""
        parts = [self._root, *key_path]
        if partition is not None:
            parts.append(f"{PARTITION_PREFIX}{partition}")
        return "/".join(parts)

    def uri(self, path: str) -> str:
        return f"s3://{path}" if self.is_s3 else path

    def _file_uri(self, path: str) -> str:
        """The URI the catalog stores for a filesystem path."""
        return f"s3://{path}" if self.is_s3 else f"file://{path}"

    @staticmethod
    def _fs_path(uri: str) -> str:
        """A catalog URI as a path for `filesystem` (no scheme)."""
        for scheme in ("file://", "s3://", "s3a://"):
            if uri.startswith(scheme):
                return uri[len(scheme) :]
        return uri

    # ---------------------------------------------------------------- clients
    @property
    def filesystem(self) -> pafs.FileSystem:
        if self._fs is None:
            if self.is_s3:
                self._fs = s3_filesystem()
            else:
                self._fs = pafs.LocalFileSystem()
        return self._fs

    @property
    def s3_client(self) -> Any:
        if self._s3 is None:
            self._s3 = s3_client()
        return self._s3

    @property
    def resolved_catalog_uri(self) -> str:
        if self.catalog_uri:
            return with_password(self.catalog_uri, self.catalog_password).render_as_string(hide_password=False)
        if self.is_s3:
            raise ValueError(
                f"lake {self.url}: an S3 lake needs an Iceberg catalog database; set lake.catalog.uri "
                "(e.g. postgresql+psycopg2://user@host/db); a SQLite file cannot live in S3"
            )
        return f"sqlite:///{self._root}/catalog.db"

    @property
    def catalog(self) -> Any:
        """The pyiceberg `SqlCatalog` (one per process and lake)."""
        if self._catalog is None:
            properties: dict[str, str] = {"uri": self.resolved_catalog_uri, "warehouse": self._file_uri(self._root)}
            if self.is_s3:
                properties["s3.region"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
                if os.environ.get("AWS_ENDPOINT_URL"):
                    properties["s3.endpoint"] = os.environ["AWS_ENDPOINT_URL"]
            else:
                os.makedirs(self._root, exist_ok=True)
            self._catalog = _open_sql_catalog(properties)
        return self._catalog

    # ---------------------------------------------------------------- tables
    def load_table(self, key_path: Sequence[str]) -> Any | None:
        """The Iceberg table of a dataset, or None if it was never written.

        The catalog is asked for the table's current metadata file on every call (one query); the file
        itself is parsed once per process (`_TABLE_METADATA`), so a step that looks at a table ten times
        reads its metadata once, and a commit by anyone is seen on the next call."""
        from pyiceberg.catalog.sql import IcebergTables
        from pyiceberg.io import load_file_io
        from pyiceberg.table import Table
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        namespace, name = table_name(key_path)
        catalog = self.catalog
        with Session(catalog.engine) as session:
            location = session.scalar(select(IcebergTables.metadata_location).where(
                IcebergTables.catalog_name == catalog.name, IcebergTables.table_namespace == namespace,
                IcebergTables.table_name == name))
        metadata = _TABLE_METADATA.get(location) if location else None
        if location is None or metadata is None:
            try:
                table = catalog.load_table((namespace, name))
            except NoSuchTableError:
                return None
            _remember_metadata(table.metadata_location, table.metadata)
            return table
        _TABLE_METADATA.move_to_end(location)
        return Table(identifier=(namespace, name), metadata=metadata, metadata_location=location,
                     io=load_file_io({**catalog.properties, **metadata.properties}, location), catalog=catalog)

    def _create_table(
        self, key_path: Sequence[str], schema: pa.Schema, partition_column: str | None, hidden: bool
    ) -> Any:
        from pyiceberg.catalog import Catalog
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.schema import assign_fresh_schema_ids
        from pyiceberg.transforms import IdentityTransform

        namespace, _ = table_name(key_path)
        try:
            self.catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
        except DBAPIError:
            # Another process inserted the namespace between pyiceberg's check and its insert.
            if not self.catalog.namespace_exists(namespace):
                raise
        # Fresh ids now (the conversion leaves -1), so the partition field can name its source column.
        iceberg_schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(_iceberg_safe(schema)))
        spec = PartitionSpec()
        if partition_column is not None:
            source = iceberg_schema.find_field(partition_column)
            spec = PartitionSpec(
                PartitionField(source_id=source.field_id, field_id=1000, transform=IdentityTransform(),
                               name=partition_column)
            )
        # pyiceberg's own commit retry re-applies the updates without our commit-record check; a lost
        # race must come back to `_commit`, which re-reads the table and decides retry or conflict.
        properties = {"commit.retry.num-retries": "0"}
        if hidden:
            properties[HIDDEN_PROPERTY] = PARTITION_COLUMN
        try:
            return self.catalog.create_table(
                table_name(key_path),
                schema=iceberg_schema,
                location=self._file_uri(self.dataset_dir(key_path)),
                partition_spec=spec,
                properties=properties,
            )
        except TableAlreadyExistsError:  # another writer created it first
            return self.catalog.load_table(table_name(key_path))

    @staticmethod
    def _property(partition: str | None) -> str:
        return COMMIT_PROPERTY if partition is None else f"{COMMIT_PROPERTY}.{partition}"

    @staticmethod
    def _filter(partition: str | None, column: str = PARTITION_COLUMN) -> BooleanExpression:
        # pyiceberg's predicates take (term, value) in their own __init__, which mypy does not see behind
        # the one pydantic's dataclass_transform synthesizes from the model fields.
        return AlwaysTrue() if partition is None else EqualTo(column, partition)  # type: ignore[call-arg, arg-type]

    @staticmethod
    def partition_column(table: Any) -> str:
        """The date column a daily table is partitioned on (identity): `ingest_date` for every daily
        table but those written with `staged_partitions` (e.g. curated/fact_sales: `sale_date`)."""
        fields = table.spec().fields
        return table.schema().find_column_name(fields[0].source_id) if fields else PARTITION_COLUMN

    @staticmethod
    def _snapshots_by_batch(table: Any) -> dict[str, int]:
        found = {}
        for snapshot in table.metadata.snapshots:
            summary = snapshot.summary.additional_properties if snapshot.summary else {}
            if SNAPSHOT_BATCH in summary:
                found[summary[SNAPSHOT_BATCH]] = snapshot.snapshot_id
        return found

    def _record(self, table: Any, partition: str | None, snapshots: dict[str, int] | None = None) -> CommitInfo | None:
        raw = table.properties.get(self._property(partition))
        if raw is None:
            return None
        data = json.loads(raw)
        snapshot_id = (self._snapshots_by_batch(table) if snapshots is None else snapshots).get(data["batch_id"])
        return CommitInfo(
            batch_id=data["batch_id"], rows=data["rows"], committed_at=data["committed_at"],
            state=data.get("state") or {}, snapshot_id=snapshot_id,
        )

    # ---------------------------------------------------------------- reading
    def commit_info(self, key_path: Sequence[str], partition: str | None = None) -> CommitInfo | None:
        """The last commit of a partition (or unpartitioned table); None if there is none."""
        table = self.load_table(key_path)
        return None if table is None else self._record(table, partition)

    def commits(self, key_path: Sequence[str]) -> dict[str, CommitInfo]:
        """{partition: its last commit} of a daily table, oldest first, from one read of the table."""
        table = self.load_table(key_path)
        if table is None:
            return {}
        snapshots = self._snapshots_by_batch(table)
        records = {day: self._record(table, day, snapshots) for day in self._partitions(table)}
        return {day: info for day, info in records.items() if info is not None}

    def partition_state(self, key_path: Sequence[str], partition: str | None = None) -> dict[str, Any]:
        """The state a writer stored with a partition's data (`write_*(…, state=…)`); {} if none."""
        info = self.commit_info(key_path, partition)
        return dict(info.state) if info else {}

    def _committed(self, key_path: Sequence[str], partition: str | None) -> tuple[Any, list[str]]:
        table = self.load_table(key_path)
        if table is None or self._record(table, partition) is None:
            where = self.uri(self.dataset_dir(key_path, partition))
            raise LakeDataNotFound(f"no committed data at {where} (has its upstream asset run?)")
        row_filter = self._filter(partition, self.partition_column(table))
        files = sorted(task.file.file_path for task in table.scan(row_filter=row_filter).plan_files())
        return table, files

    def committed_files(self, key_path: Sequence[str], partition: str | None = None) -> list[str]:
        """Paths (for `filesystem`) of a partition's current data files; raises if it was never committed."""
        return [self._fs_path(f) for f in self._committed(key_path, partition)[1]]

    def partitions_files(self, key_path: Sequence[str], partitions: Sequence[str]) -> list[str]:
        """Paths of the current data files of several committed partitions, from one scan plan."""
        if not partitions:
            return []
        table = self.load_table(key_path)
        missing = [p for p in partitions if table is None or self._property(p) not in table.properties]
        if table is None or missing:
            where = self.uri(self.dataset_dir(key_path))
            raise LakeDataNotFound(f"no committed data at {where} for {', '.join(missing[:5])}")
        predicate = In(self.partition_column(table), list(partitions))  # type: ignore[call-arg, arg-type]  # see _filter
        scan = table.scan(row_filter=predicate)
        return sorted(self._fs_path(task.file.file_path) for task in scan.plan_files())

    def string_bounds(self, key_path: Sequence[str], column: str) -> list[FileBounds]:
        """Every current data file of a date-partitioned table with its bounds of the string column
        `column`, from one scan plan over the manifests: which files can hold a value is then known
        without reading any of them. Iceberg bounds are UTF-8 bytes in code-point order (Spark's string
        order); a truncated bound still encloses every value of the file."""
        table = self.load_table(key_path)
        if table is None:
            return []
        field_id = table.schema().find_field(column).field_id

        def text(bounds: dict[int, bytes] | None) -> str | None:
            value = (bounds or {}).get(field_id)
            return value.decode("utf-8") if value is not None else None

        found = []
        for task in table.scan().plan_files():
            file = task.file
            day = file.partition[0]  # the table's one partition field: identity on a date, days since 1970
            partition = (day if isinstance(day, date) else date(1970, 1, 1) + timedelta(days=day)).isoformat()
            found.append(FileBounds(self._fs_path(file.file_path), partition, text(file.lower_bounds),
                                    text(file.upper_bounds)))
        return sorted(found, key=lambda f: f.path)

    def read_arrow_partitions(self, key_path: Sequence[str], partitions: Sequence[str]) -> pa.Table:
        """The rows of several committed partitions, in one read (no partition: the table's empty schema)."""
        files = self.partitions_files(key_path, partitions)
        table = self.load_table(key_path)
        if table is None or not files:
            return self._empty(table) if table is not None else pa.table({})
        data = pq.ParquetDataset(files, filesystem=self.filesystem, partitioning=None).read()
        return data.drop_columns([c for c in self.hidden_columns(table) if c in data.column_names])

    def read_dataset_partitions(self, key_path: Sequence[str], partitions: Sequence[str]) -> ds.Dataset:
        """The rows `read_arrow_partitions` gives, as a lazy Dataset over the committed files (see
        `read_dataset`)."""
        files = self.partitions_files(key_path, partitions)
        table = self.load_table(key_path)
        if table is None or not files:
            return ds.dataset(self._empty(table) if table is not None else pa.table({}))
        hidden = set(self.hidden_columns(table))
        # Partitions written at different times may differ (a column configured later): every footer counts.
        schema = pa.unify_schemas([pq.read_schema(f, filesystem=self.filesystem) for f in files],
                                  promote_options="permissive")
        return ds.dataset(files, schema=pa.schema([f for f in schema if f.name not in hidden]), format="parquet",
                          filesystem=self.filesystem)

    @staticmethod
    def hidden_columns(table: Any) -> list[str]:
        return [c for c in table.properties.get(HIDDEN_PROPERTY, "").split(",") if c]

    def _empty(self, table: Any) -> pa.Table:
        schema = _plain(table.schema().as_arrow())
        hidden = self.hidden_columns(table)
        return schema.empty_table().drop_columns([c for c in hidden if c in schema.names])

    def read_arrow(self, key_path: Sequence[str], partition: str | None = None) -> pa.Table:
        table, files = self._committed(key_path, partition)
        if not files:
            return self._empty(table)
        data = pq.ParquetDataset([self._fs_path(f) for f in files], filesystem=self.filesystem,
                                 partitioning=None).read()
        return data.drop_columns([c for c in self.hidden_columns(table) if c in data.column_names])

    def read_dataset(self, key_path: Sequence[str], partition: str | None = None) -> ds.Dataset:
        """The rows `read_arrow` gives, as a lazy Dataset over the committed files: a consumer scans it
        in batches and never holds the partition whole."""
        table, files = self._committed(key_path, partition)
        if not files:
            return ds.dataset(self._empty(table))
        paths = [self._fs_path(f) for f in files]
        schema = pq.read_schema(paths[0], filesystem=self.filesystem)
        hidden = set(self.hidden_columns(table))
        return ds.dataset(paths, schema=pa.schema([f for f in schema if f.name not in hidden]), format="parquet",
                          filesystem=self.filesystem)

    def column_bounds(
        self, key_path: Sequence[str], partitions: Sequence[str | None], column: str
    ) -> tuple[Any, Any] | None:
        """(min, max) of `column` over the committed files of `partitions` (None: an unpartitioned
        table), from the Parquet footers' statistics, without reading data: (None, None) when no row
        has a value; None when a file's footer has no statistics for it (then the caller scans)."""
        low = high = None
        for partition in partitions:
            for path in self.committed_files(key_path, partition):
                metadata = pq.read_metadata(path, filesystem=self.filesystem)
                for group in range(metadata.num_row_groups):
                    row_group = metadata.row_group(group)
                    chunks = [row_group.column(i) for i in range(row_group.num_columns)]
                    chunk = next((c for c in chunks if c.path_in_schema == column), None)
                    stats = chunk.statistics if chunk is not None else None
                    if stats is None or (not stats.has_min_max and stats.null_count != row_group.num_rows):
                        return None
                    if stats.has_min_max:
                        low = stats.min if low is None else min(low, stats.min)
                        high = stats.max if high is None else max(high, stats.max)
        return low, high

    def read_schema(self, key_path: Sequence[str], partition: str | None = None) -> pa.Schema:
        table, files = self._committed(key_path, partition)
        if not files:
            return self._empty(table).schema
        schema = pq.read_schema(self._fs_path(files[0]), filesystem=self.filesystem)
        hidden = [c for c in self.hidden_columns(table) if c in schema.names]
        return pa.schema([f for f in schema if f.name not in hidden])

    def committed_partitions(self, key_path: Sequence[str]) -> list[str]:
        """Sorted partition keys that have a commit."""
        table = self.load_table(key_path)
        return [] if table is None else self._partitions(table)

    @staticmethod
    def _partitions(table: Any) -> list[str]:
        prefix = f"{COMMIT_PROPERTY}."
        return sorted(k[len(prefix) :] for k in table.properties if k.startswith(prefix))

    # ---------------------------------------------------------------- writing
    @contextmanager
    def staged_batch(self, key_path: Sequence[str], partition: str | None = None) -> Iterator[StagedBatch]:
        """Stage the data files of one commit; nothing is visible until `StagedBatch.commit()`.

        Locally the files go straight into the table's fresh batch directory (Spark writes there
        natively); on S3 into a local temp directory, uploaded with SSE at commit. Files of daily
        tables must carry the `ingest_date` column (`StagedBatch.partition_value`). If the block
        raises, the staged files are removed and the previous snapshot stays current.
        """
        batch_id = new_batch_id()
        target_dir = f"{self.dataset_dir(key_path, partition)}/batch-{batch_id}"
        if self.is_s3:
            local_dir = tempfile.mkdtemp(prefix="lake-stage-")
        else:
            local_dir = target_dir
            os.makedirs(os.path.dirname(local_dir), exist_ok=True)
        batch = self._open_batch(key_path, partition, batch_id, local_dir, target_dir)
        try:
            yield batch
        except BaseException:
            batch.discard()
            raise
        finally:
            if self.is_s3:
                shutil.rmtree(local_dir, ignore_errors=True)

    @property
    def spool_root(self) -> str:
        """Where spools live: `<lake>/.spool/` for a local lake (the lake's filesystem, so a commit is a
        rename); for an S3 lake a local directory, `<temp dir>/lake_assets-spool/`, shared by the S3
        lakes of this machine (the files are uploaded by the commit)."""
        return os.path.join(tempfile.gettempdir(), S3_SPOOL_DIR) if self.is_s3 else f"{self._root}/{SPOOL_DIR}"

    @contextmanager
    def spool(self, key_path: Sequence[str], partition: str | None = None) -> Iterator[StagedBatch]:
        """A `StagedBatch` whose files are written outside every table (the spool), for a writer that
        produces the files but leaves the commit to someone else (the ingestion hands its batch to the
        lake IO manager).

        Local lake: a fresh directory under `<lake>/.spool/`, on the lake's filesystem, so the commit
        moves the files into the table's batch directory (a rename, not a copy); S3: a directory under
        `spool_root` on local disk, uploaded with SSE at commit, as `staged_batch`. The batch id (and the partition's
        commit a conflicting writer is detected against) is fixed when the spool opens. When the block
        ends the spool directory is removed, and an uncommitted batch leaves nothing in the lake.
        A process killed meanwhile leaves its spool directory behind, in no table's location; the next
        spool under the same `spool_root` removes the spools nothing wrote to for `ABANDONED_SPOOL_AGE`.
        """
        batch_id = new_batch_id()
        target_dir = f"{self.dataset_dir(key_path, partition)}/batch-{batch_id}"
        spool_root = self.spool_root
        os.makedirs(spool_root, exist_ok=True)
        _remove_abandoned_spools(spool_root, datetime.now(timezone.utc) - ABANDONED_SPOOL_AGE)
        local_dir = tempfile.mkdtemp(prefix=f"{'.'.join(table_name(key_path))}-{batch_id}-", dir=spool_root)
        batch = self._open_batch(key_path, partition, batch_id, local_dir, target_dir)
        try:
            yield batch
        finally:
            batch.discard()
            shutil.rmtree(local_dir, ignore_errors=True)

    def _open_batch(self, key_path: Sequence[str], partition: str | None, batch_id: str, local_dir: str,
                    target_dir: str) -> StagedBatch:
        table = self.load_table(key_path)
        seen = self._record(table, partition) if table is not None else None
        return StagedBatch(self, list(key_path), partition, batch_id, local_dir, target_dir,
                           seen.batch_id if seen else None)

    @contextmanager
    def staged_partitions(self, key_path: Sequence[str], column: str) -> Iterator[StagedPartitions]:
        """Stage the data files of one commit that replaces several partitions of a table partitioned
        on the date column `column` (which the data carries); nothing is visible until
        `StagedPartitions.commit()`. Each staged file must hold one value of `column`; any layout under
        `local_dir` will do (Spark's `partitionBy` directories included). If the block raises, the
        staged files are removed and the previous snapshot stays current.
        """
        batch_id = new_batch_id()
        if self.is_s3:
            local_dir = tempfile.mkdtemp(prefix="lake-stage-")
        else:
            local_dir = f"{self.dataset_dir(key_path)}/staging-{batch_id}"
            os.makedirs(os.path.dirname(local_dir), exist_ok=True)
        table = self.load_table(key_path)
        prefix = f"{COMMIT_PROPERTY}."
        seen = {} if table is None else {
            k[len(prefix):]: json.loads(v)["batch_id"] for k, v in table.properties.items() if k.startswith(prefix)
        }
        try:
            yield StagedPartitions(self, list(key_path), column, batch_id, local_dir, seen)
        finally:
            # Committed files were moved out (or uploaded); what is left is Spark's bookkeeping or a failed write.
            shutil.rmtree(local_dir, ignore_errors=True)

    def _commit_partitions(self, batch: StagedPartitions, files: dict[str, list[str]], rows: dict[str, int],
                           schema: pa.Schema | None, state: dict[str, Any] | None) -> dict[str, CommitInfo]:
        """One catalog transaction replacing every partition of `rows` by its `files` (none: emptied)."""
        key_path, column, partitions = batch.key_path, batch.column, sorted(rows)
        where = "/".join(key_path)
        committed_at = datetime.now(timezone.utc).isoformat()
        records: dict[str, dict[str, Any]] = {
            p: {"batch_id": batch.batch_id, "rows": rows[p], "committed_at": committed_at, "state": state or {}}
            for p in partitions}
        summary = {SNAPSHOT_BATCH: batch.batch_id}
        for attempt in range(COMMIT_ATTEMPTS):
            table = self.load_table(key_path)
            if table is None:
                if schema is None:
                    raise ValueError(f"{where}: the first write of a table needs at least one data file")
                table = self._create_table(key_path, schema, column, hidden=False)
            raced = [p for p in partitions if (json.loads(table.properties[self._property(p)])["batch_id"]
                                               if self._property(p) in table.properties else None)
                     != batch.seen.get(p)]
            if raced:
                raise LakeWriteConflict(
                    f"{where}: another writer committed partition(s) {', '.join(raced[:5])} while batch "
                    f"{batch.batch_id} was being written; nothing of this write was published. Run it again."
                )
            tx = table.transaction()
            if schema is not None:
                try:
                    with tx.update_schema() as update:
                        update.union_by_name(_iceberg_safe(schema))
                except (ValueError, ValidationError) as exc:
                    raise ValueError(f"{where}: the written columns do not fit the table's schema ({exc})") from exc
            row_filter = In(column, partitions)  # type: ignore[call-arg, arg-type]  # see _filter
            if any(True for _ in table.scan(row_filter=row_filter).plan_files()):
                tx.delete(row_filter, snapshot_properties=summary)
            added = [f for p in partitions for f in files.get(p, [])]
            if added:
                tx.add_files(added, snapshot_properties=summary, check_duplicate_files=False)
            tx.set_properties({self._property(p): json.dumps(r, sort_keys=True, default=str)
                               for p, r in records.items()})
            try:
                tx.commit_transaction()
            except ValidationException as exc:
                raise LakeWriteConflict(
                    f"{where}: another writer committed one of these partitions while batch {batch.batch_id} "
                    f"was being written ({exc}); nothing of this write was published. Run it again."
                ) from exc
            except CommitFailedException:
                time.sleep(0.05 * (attempt + 1))
                continue
            # The transaction left the table at the metadata file it just wrote: the next read needs no parse.
            _remember_metadata(table.metadata_location, table.metadata)
            committed = self.load_table(key_path)
            snapshot = committed.current_snapshot() if committed is not None else None
            snapshot_id = snapshot.snapshot_id if snapshot else None
            return {p: CommitInfo(batch_id=batch.batch_id, rows=r["rows"], committed_at=committed_at,
                                  state=dict(state or {}), snapshot_id=snapshot_id) for p, r in records.items()}
        raise LakeWriteConflict(f"{where}: the catalog kept changing under {COMMIT_ATTEMPTS} commit attempts")

    def write_arrow(
        self,
        key_path: Sequence[str],
        partition: str | None,
        table: pa.Table,
        state: dict[str, Any] | None = None,
    ) -> CommitInfo:
        """Replace a partition (or an unpartitioned table) with `table`, atomically."""
        existing = self.load_table(key_path)
        table = _conform_for_write(table, existing.schema().as_arrow() if existing is not None else None)
        with self.staged_batch(key_path, partition) as batch:
            os.makedirs(batch.local_dir, exist_ok=True)
            pq.write_table(batch.with_partition_column(table), f"{batch.local_dir}/part-00000.parquet",
                           compression="snappy")
            return batch.commit(rows=table.num_rows, state=state)

    def _commit(self, batch: StagedBatch, files: list[str], schema: pa.Schema, rows: int,
                state: dict[str, Any] | None) -> CommitInfo:
        """One catalog transaction: schema evolution, drop the partition's files, add `files`, record."""
        key_path, partition = batch.key_path, batch.partition
        where = "/".join(key_path) + (f" partition {partition}" if partition else "")
        record: dict[str, Any] = {
            "batch_id": batch.batch_id,
            "rows": rows,
            "committed_at": datetime.now(timezone.utc).isoformat(),
            "state": state or {},
        }
        for attempt in range(COMMIT_ATTEMPTS):
            table = self.load_table(key_path)
            if table is None:
                hidden = partition is not None and batch.added_partition_column
                column = PARTITION_COLUMN if partition is not None else None
                table = self._create_table(key_path, schema, column, hidden)
            current = self._record(table, partition)
            if (current.batch_id if current else None) != batch.seen_batch_id:
                raise LakeWriteConflict(
                    f"{where}: another writer committed batch {current.batch_id if current else '?'} while "
                    f"batch {batch.batch_id} was being written; nothing of this write was published. "
                    "Run it again (the rerun replaces the partition)."
                )
            tx = table.transaction()
            try:  # new columns and type widenings (int -> long); a no-op when nothing changed
                with tx.update_schema() as update:
                    update.union_by_name(_iceberg_safe(schema))
            except (ValueError, ValidationError) as exc:
                raise ValueError(
                    f"{where}: the written columns do not fit the table's schema ({exc}); a column cannot "
                    "change to an incompatible type"
                ) from exc
            row_filter = self._filter(partition, self.partition_column(table))
            if any(True for _ in table.scan(row_filter=row_filter).plan_files()):
                tx.delete(row_filter, snapshot_properties={SNAPSHOT_BATCH: batch.batch_id})
            if files:
                try:
                    tx.add_files(files, snapshot_properties={SNAPSHOT_BATCH: batch.batch_id},
                                 check_duplicate_files=False)
                except ValueError as exc:
                    raise ValueError(f"{where}: the written files do not fit the table: {exc}") from exc
            tx.set_properties({self._property(partition): json.dumps(record, sort_keys=True, default=str)})
            try:
                tx.commit_transaction()
            except ValidationException as exc:
                # pyiceberg re-validated the delete on the newer snapshot: files were added to this
                # partition by a writer that committed after this one started.
                raise LakeWriteConflict(
                    f"{where}: another writer committed this partition while batch {batch.batch_id} was "
                    f"being written ({exc}); nothing of this write was published. Run it again (the rerun "
                    "replaces the partition)."
                ) from exc
            except CommitFailedException:
                # Someone else committed first: re-read and try again (fails above if it was this partition).
                time.sleep(0.05 * (attempt + 1))
                continue
            # The transaction left the table at the metadata file it just wrote: the next read needs no parse.
            _remember_metadata(table.metadata_location, table.metadata)
            committed = self.load_table(key_path)
            snapshot = committed.current_snapshot() if committed is not None else None
            return CommitInfo(batch_id=batch.batch_id, rows=rows, committed_at=record["committed_at"],
                              state=dict(state or {}), snapshot_id=snapshot.snapshot_id if snapshot else None)
        raise LakeWriteConflict(f"{where}: the catalog kept changing under {COMMIT_ATTEMPTS} commit attempts")

    # ---------------------------------------------------------------- S3 primitives
    def _key(self, path: str) -> str:
        return path.split("/", 1)[1]

    def _put_file(self, local_path: str, path: str) -> None:
        self.s3_client.upload_file(local_path, self.bucket, self._key(path), ExtraArgs=self.sse_args)

    @property
    def sse_args(self) -> dict[str, str]:
        """The server-side encryption arguments of every upload (SSE-KMS when a key is configured)."""
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": self.sse}


class StagedBatch:
    """Files of one pending commit. `commit()` publishes them; anything else leaves no visible trace."""

    def __init__(self, storage: LakeStorage, key_path: list[str], partition: str | None, batch_id: str,
                 local_dir: str, target_dir: str, seen_batch_id: str | None) -> None:
        self.storage = storage
        self.key_path = key_path
        self.partition = partition
        self.batch_id = batch_id
        self.local_dir = local_dir
        self.target_dir = target_dir
        self.seen_batch_id = seen_batch_id  # the partition's commit when this write began
        self.committed = False
        self.added_partition_column = False  # set when the lake adds `ingest_date` to the data

    @property
    def partition_value(self) -> date | None:
        """The `ingest_date` every row of a daily table's files must carry."""
        return None if self.partition is None else date.fromisoformat(self.partition)

    def with_partition_column(self, table: pa.Table) -> pa.Table:
        """`table` with the `ingest_date` column a daily table's files need (kept if the data has it)."""
        if self.partition is None or PARTITION_COLUMN in table.column_names:
            return table
        self.added_partition_column = True
        return table.append_column(
            pa.field(PARTITION_COLUMN, pa.date32()), pa.array([self.partition_value] * table.num_rows, pa.date32())
        )

    def _staged_names(self) -> list[str]:
        return sorted(
            n for n in os.listdir(self.local_dir) if n.endswith(".parquet") and not n.startswith(".")
        ) if os.path.isdir(self.local_dir) else []

    def data_schema(self) -> pa.Schema | None:
        """The columns of the staged files as the writer wrote them (without an `ingest_date` the lake
        added); None before a file is staged. Read before `commit`, which moves the files away."""
        names = self._staged_names()
        if not names:
            return None
        schema = pq.read_schema(f"{self.local_dir}/{names[0]}")
        if self.added_partition_column and PARTITION_COLUMN in schema.names:
            schema = schema.remove(schema.get_field_index(PARTITION_COLUMN))
        return schema.remove_metadata()

    def commit(self, rows: int | None = None, state: dict[str, Any] | None = None) -> CommitInfo:
        """Publish the staged files as the partition's whole content, in one catalog transaction.

        `rows` defaults to the files' row count; `state` is stored with the commit (`partition_state`).
        Files staged outside the table (a spool) are moved into its batch directory first.
        """
        storage = self.storage
        names = self._staged_names()
        schema: pa.Schema | None = None
        kept: list[str] = []
        counted = 0
        for name in names:
            metadata = pq.read_metadata(f"{self.local_dir}/{name}")
            schema = schema or metadata.schema.to_arrow_schema()
            counted += metadata.num_rows
            if metadata.num_rows:  # an empty file has no statistics to place it in a partition
                kept.append(name)
        if schema is None:
            raise ValueError(f"{'/'.join(self.key_path)}: the write produced no Parquet file in {self.local_dir}")
        if self.partition is not None and PARTITION_COLUMN not in schema.names:
            raise ValueError(f"{'/'.join(self.key_path)}: files of a daily table need the {PARTITION_COLUMN} column")
        files = []
        for name in kept:
            target = f"{self.target_dir}/{name}"
            if storage.is_s3:
                storage._put_file(f"{self.local_dir}/{name}", target)
            elif self.local_dir != self.target_dir:
                os.makedirs(self.target_dir, exist_ok=True)
                os.replace(f"{self.local_dir}/{name}", target)
            files.append(storage._file_uri(target))
        info = storage._commit(self, files, schema, counted if rows is None else rows, state)
        self.committed = True
        return info

    def discard(self) -> None:
        """Remove what an uncommitted batch put in the table's location (nothing on S3: not uploaded
        files stay local, uploaded ones are orphans for retention)."""
        if not self.committed and not self.storage.is_s3:
            shutil.rmtree(self.target_dir, ignore_errors=True)


class StagedPartitions:
    """Files of one pending commit over several partitions of a table partitioned on `column`."""

    def __init__(self, storage: LakeStorage, key_path: list[str], column: str, batch_id: str, local_dir: str,
                 seen: dict[str, str]) -> None:
        self.storage = storage
        self.key_path = key_path
        self.column = column
        self.batch_id = batch_id
        self.local_dir = local_dir
        self.seen = seen  # {partition: batch id} of the table's commits when this write began

    def commit(self, replace: Sequence[str] = (), state: dict[str, Any] | None = None) -> dict[str, CommitInfo]:
        """Publish the staged files, in one catalog transaction, as the whole content of the partitions
        they hold rows of and of the partitions in `replace` (those without a staged row become empty).
        `state` is stored with each partition's commit. Returns {partition: its commit}."""
        storage = self.storage
        staged = sorted(
            os.path.join(root, name) for root, _, names in os.walk(self.local_dir) for name in names
            if name.endswith(".parquet") and not name.startswith((".", "_"))
        )
        schema: pa.Schema | None = None
        files: dict[str, list[str]] = {}
        rows: dict[str, int] = dict.fromkeys(replace, 0)
        for number, path in enumerate(staged):
            metadata = pq.read_metadata(path)
            schema = schema or metadata.schema.to_arrow_schema()
            if not metadata.num_rows:
                continue
            values = pc.unique(pq.read_table(path, columns=[self.column]).column(self.column)).to_pylist()
            if len(values) != 1 or values[0] is None:
                raise ValueError(f"{'/'.join(self.key_path)}: a staged file holds {self.column} values {values[:5]}; "
                                 "each file must hold exactly one (no NULL)")
            partition = values[0].isoformat()
            target = f"{storage.dataset_dir(self.key_path)}/{self.column}={partition}/batch-{self.batch_id}/" \
                     f"part-{number:05d}.parquet"
            if storage.is_s3:
                storage._put_file(path, target)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(path, target)
            files.setdefault(partition, []).append(storage._file_uri(target))
            rows[partition] = rows.get(partition, 0) + metadata.num_rows
        if schema is not None and self.column not in schema.names:
            raise ValueError(f"{'/'.join(self.key_path)}: the staged files lack the partition column {self.column}")
        if not rows:
            return {}
        return storage._commit_partitions(self, files, rows, schema, state)
