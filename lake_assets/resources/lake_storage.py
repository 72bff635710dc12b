"""Lake storage: a local directory or an S3 prefix, with atomic, replace-not-append partition commits.

Layout of one dataset (an asset, optionally one daily partition of it)::

    <layer>/<source>/<table>/ingest_date=YYYY-MM-DD/batch-<id>/part-00000.parquet
    <layer>/<source>/<table>/ingest_date=YYYY-MM-DD/_manifest.json

Guarantees:
* A partition becomes visible only when `_manifest.json` is written, last, in one PUT (S3) or one
  rename (local). Readers list files from the manifest only, so a crashed write is never read.
* Committing a partition again replaces it: the new manifest names only the new batch's files and
  older batches (and leftovers of crashed writes) are deleted after the commit.
* On S3 every object is written through boto3 with server-side encryption (SSE-S3, AES256); pyarrow
  cannot request SSE per write. `AWS_ENDPOINT_URL` is honoured (MinIO, moto).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from pydantic import PrivateAttr

MANIFEST = "_manifest.json"
PARTITION_PREFIX = "ingest_date="


class LakeDataNotFound(FileNotFoundError):
    """A dataset or partition that has never been committed."""


@dataclass(frozen=True)
class Manifest:
    batch_id: str
    files: list[str]
    rows: int
    committed_at: str
    extra: dict[str, Any]


class LakeStorage(ConfigurableResource):
    """Where the lake lives: `./.lake` (any local directory) or `s3://bucket/prefix`."""

    url: str
    sse: str = "AES256"

    _fs: Any = PrivateAttr(default=None)
    _s3: Any = PrivateAttr(default=None)

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
        """Filesystem path (bucket/prefix/... on S3) of one dataset or one partition of it."""
        parts = [self._root, *key_path]
        if partition is not None:
            parts.append(f"{PARTITION_PREFIX}{partition}")
        return "/".join(parts)

    def uri(self, path: str) -> str:
        return f"s3://{path}" if self.is_s3 else path

    # ---------------------------------------------------------------- clients
    @property
    def filesystem(self) -> pafs.FileSystem:
        if self._fs is None:
            if self.is_s3:
                endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
                kwargs: dict[str, Any] = {"region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
                if endpoint:
                    scheme, _, host = endpoint.partition("://")
                    kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
                self._fs = pafs.S3FileSystem(**kwargs)
            else:
                self._fs = pafs.LocalFileSystem()
        return self._fs

    @property
    def s3_client(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        return self._s3

    # ---------------------------------------------------------------- reading
    def read_manifest(self, key_path: Sequence[str], partition: str | None = None) -> Manifest | None:
        path = f"{self.dataset_dir(key_path, partition)}/{MANIFEST}"
        try:
            with self.filesystem.open_input_stream(path) as stream:
                data = json.loads(stream.read().decode("utf-8"))
        except (FileNotFoundError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or "NoSuchKey" in str(exc) or "does not exist" in str(exc):
                return None
            raise
        return Manifest(
            batch_id=data["batch_id"],
            files=data["files"],
            rows=data["rows"],
            committed_at=data["committed_at"],
            extra=data.get("extra", {}),
        )

    def committed_files(self, key_path: Sequence[str], partition: str | None = None) -> list[str]:
        """Full paths of the committed files of a dataset; raises if it was never committed."""
        manifest = self.read_manifest(key_path, partition)
        if manifest is None:
            where = self.uri(self.dataset_dir(key_path, partition))
            raise LakeDataNotFound(f"no committed data at {where} (has its upstream asset run?)")
        base = self.dataset_dir(key_path, partition)
        return [f"{base}/{name}" for name in manifest.files]

    def read_arrow(self, key_path: Sequence[str], partition: str | None = None) -> pa.Table:
        files = self.committed_files(key_path, partition)
        return pq.ParquetDataset(files, filesystem=self.filesystem, partitioning=None).read()

    def read_schema(self, key_path: Sequence[str], partition: str | None = None) -> pa.Schema:
        files = self.committed_files(key_path, partition)
        return pq.read_schema(files[0], filesystem=self.filesystem) if files else pa.schema([])

    def committed_partitions(self, key_path: Sequence[str]) -> list[str]:
        """Sorted partition keys of a dataset that have a manifest."""
        base = self.dataset_dir(key_path)
        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except FileNotFoundError:
            return []
        keys = []
        for info in infos:
            name = info.path.rstrip("/").rsplit("/", 1)[-1]
            if info.type == pafs.FileType.Directory and name.startswith(PARTITION_PREFIX):
                key = name[len(PARTITION_PREFIX) :]
                if self.read_manifest(key_path, key) is not None:
                    keys.append(key)
        return sorted(keys)

    # ---------------------------------------------------------------- writing
    @contextmanager
    def staged_batch(self, key_path: Sequence[str], partition: str | None = None) -> Iterator[StagedBatch]:
        """Stage files for one commit; nothing is visible until `StagedBatch.commit()`.

        Locally the files are written straight into the batch directory (Spark can write there
        natively); on S3 they are written to a local temp directory and uploaded with SSE at commit.
        If the block raises, the staged files are removed and the previous commit stays visible.
        """
        batch_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        target_dir = self.dataset_dir(key_path, partition)
        if self.is_s3:
            local_dir = tempfile.mkdtemp(prefix="lake-stage-")
        else:
            local_dir = f"{target_dir}/batch-{batch_id}"
            os.makedirs(os.path.dirname(local_dir), exist_ok=True)
        batch = StagedBatch(self, target_dir, batch_id, local_dir)
        try:
            yield batch
        except BaseException:
            batch.discard()
            raise
        finally:
            if self.is_s3:
                shutil.rmtree(local_dir, ignore_errors=True)

    def write_arrow(
        self,
        key_path: Sequence[str],
        partition: str | None,
        table: pa.Table,
        extra: dict[str, Any] | None = None,
    ) -> Manifest:
        """Replace a dataset/partition with `table`, atomically."""
        with self.staged_batch(key_path, partition) as batch:
            os.makedirs(batch.local_dir, exist_ok=True)
            pq.write_table(table, f"{batch.local_dir}/part-00000.parquet", compression="snappy")
            return batch.commit(rows=table.num_rows, extra=extra)

    # ---------------------------------------------------------------- S3 primitives
    def _key(self, path: str) -> str:
        return path.split("/", 1)[1]

    def _put_file(self, local_path: str, path: str) -> None:
        self.s3_client.upload_file(
            local_path, self.bucket, self._key(path), ExtraArgs={"ServerSideEncryption": self.sse}
        )

    def _put_bytes(self, data: bytes, path: str) -> None:
        self.s3_client.put_object(
            Bucket=self.bucket, Key=self._key(path), Body=data, ServerSideEncryption=self.sse
        )

    def _delete_prefix(self, path: str) -> None:
        if self.is_s3:
            paginator = self.s3_client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(path).rstrip("/") + "/"):
                objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if objects:
                    self.s3_client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
        else:
            shutil.rmtree(path, ignore_errors=True)

    def _list_batch_dirs(self, target_dir: str) -> list[str]:
        if self.is_s3:
            # List keys, not "directories": with bucket versioning, delimiter listings (pyarrow's) can
            # still show prefixes whose objects only have delete markers left.
            prefix = self._key(target_dir).rstrip("/") + "/"
            dirs: set[str] = set()
            for page in self.s3_client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    first = obj["Key"][len(prefix) :].split("/", 1)[0]
                    if first.startswith("batch-") and "/" in obj["Key"][len(prefix) :]:
                        dirs.add(f"{target_dir.rstrip('/')}/{first}")
            return sorted(dirs)
        infos = self.filesystem.get_file_info(pafs.FileSelector(target_dir, allow_not_found=True))
        return [
            i.path.rstrip("/")
            for i in infos
            if i.type == pafs.FileType.Directory and i.base_name.startswith("batch-")
        ]


class StagedBatch:
    """Files of one pending commit. `commit()` publishes them; anything else leaves no trace."""

    def __init__(self, storage: LakeStorage, target_dir: str, batch_id: str, local_dir: str) -> None:
        self.storage = storage
        self.target_dir = target_dir
        self.batch_id = batch_id
        self.local_dir = local_dir
        self.committed = False

    @property
    def batch_dir_name(self) -> str:
        return f"batch-{self.batch_id}"

    def commit(self, rows: int, extra: dict[str, Any] | None = None) -> Manifest:
        files = sorted(
            name for name in os.listdir(self.local_dir) if name.endswith(".parquet") and not name.startswith(".")
        )
        storage = self.storage
        if storage.is_s3:
            for name in files:
                storage._put_file(f"{self.local_dir}/{name}", f"{self.target_dir}/{self.batch_dir_name}/{name}")
        manifest = Manifest(
            batch_id=self.batch_id,
            files=[f"{self.batch_dir_name}/{name}" for name in files],
            rows=rows,
            committed_at=datetime.now(timezone.utc).isoformat(),
            extra=extra or {},
        )
        payload = json.dumps(manifest.__dict__, indent=1).encode("utf-8")
        manifest_path = f"{self.target_dir}/{MANIFEST}"
        if storage.is_s3:
            storage._put_bytes(payload, manifest_path)
        else:
            tmp = f"{self.target_dir}/.{MANIFEST}.{self.batch_id}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, manifest_path)  # the commit point: one atomic rename
        self.committed = True
        # Replace, never append: drop every other batch (older commits, crashed writes).
        for batch_dir in storage._list_batch_dirs(self.target_dir):
            if not batch_dir.endswith(self.batch_dir_name):
                storage._delete_prefix(batch_dir)
        return manifest

    def discard(self) -> None:
        if not self.committed and not self.storage.is_s3:
            shutil.rmtree(self.local_dir, ignore_errors=True)
