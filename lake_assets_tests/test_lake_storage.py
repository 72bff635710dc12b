"""The lake's commit protocol: invisible until committed, replace-not-append, crash leaves no trace."""

from __future__ import annotations

from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from lake_assets.resources.lake_storage import LakeDataNotFound, LakeStorage

from .conftest import S3Server

KEY = ["raw", "src", "table"]
DAY = "2024-01-01"


def _lake(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> LakeStorage:
    if kind == "local":
        return LakeStorage(url=str(tmp_path / "lake"))
    s3: S3Server = request.getfixturevalue("s3")
    return LakeStorage(url=f"s3://{s3.make_bucket()}/prefix")


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_rewrite_replaces_and_crash_keeps_previous(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lake = _lake(kind, tmp_path, request)
    with pytest.raises(LakeDataNotFound, match="no committed data"):
        lake.read_arrow(KEY, DAY)

    lake.write_arrow(KEY, DAY, pa.table({"x": [1, 2, 3]}))
    lake.write_arrow(KEY, DAY, pa.table({"x": [4, 5]}))
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [4, 5]
    assert lake.read_manifest(KEY, DAY).rows == 2

    # A write that dies after staging its files leaves the previous commit as the visible one.
    with pytest.raises(RuntimeError, match="boom"):
        with lake.staged_batch(KEY, DAY) as batch:
            Path(batch.local_dir).mkdir(parents=True, exist_ok=True)
            pa.parquet.write_table(pa.table({"x": [9]}), f"{batch.local_dir}/part-00000.parquet")
            raise RuntimeError("boom")
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [4, 5]
    assert lake.committed_partitions(KEY) == [DAY]

    # Exactly one batch of files remains (S3: counted from the object listing itself).
    if kind == "s3":
        client = boto3.client("s3", endpoint_url=request.getfixturevalue("s3").endpoint)
        prefix = lake.dataset_dir(KEY, DAY).split("/", 1)[1] + "/"
        keys = [o["Key"][len(prefix) :] for o in client.list_objects_v2(Bucket=lake.bucket, Prefix=prefix)["Contents"]]
        assert sorted(k.split("/")[0] for k in keys if k.startswith("batch-")) == [
            f"batch-{lake.read_manifest(KEY, DAY).batch_id}"
        ]
    else:
        batch_dirs = [p.name for p in Path(lake.dataset_dir(KEY, DAY)).iterdir() if p.name.startswith("batch-")]
        assert batch_dirs == [f"batch-{lake.read_manifest(KEY, DAY).batch_id}"]


def test_s3_objects_are_server_side_encrypted(s3: S3Server) -> None:
    bucket = s3.make_bucket()
    lake = LakeStorage(url=f"s3://{bucket}/lake")
    lake.write_arrow(KEY, DAY, pa.table({"x": [1]}))
    client = boto3.client("s3", endpoint_url=s3.endpoint)
    objects = client.list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[-1] for o in objects} == {"part-00000.parquet", "_manifest.json"}
    for obj in objects:
        assert client.head_object(Bucket=bucket, Key=obj["Key"])["ServerSideEncryption"] == "AES256"
