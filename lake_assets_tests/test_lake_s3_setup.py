"""`lake-s3-setup` on moto S3: a fresh bucket fails --check naming what is missing; after setup the
check passes and every object a lake write leaves carries server-side encryption."""

from __future__ import annotations

import uuid

import boto3
import pyarrow as pa
import pytest

from lake_assets.lake_maintenance import s3_setup
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import S3Server


def test_setup_then_check_and_writes_are_encrypted(s3: S3Server, postgres_catalog: str,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    client = boto3.client("s3", endpoint_url=s3.endpoint)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)  # fresh: no versioning, no default encryption
    monkeypatch.setenv("LAKE_URL", f"s3://{bucket}/lake")
    monkeypatch.setenv("LAKE_CATALOG_URI", postgres_catalog)

    assert s3_setup.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f"s3://{bucket}: versioning is off" in err and f"s3://{bucket}: no default encryption" in err

    # A KMS key in the config: a bucket with SSE-S3 defaults is not what it asks for.
    monkeypatch.setenv("LAKE_KMS_KEY_ID", "alias/lake")
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert s3_setup.main(["--check"]) == 1
    assert "default encryption is AES256 (want aws:kms alias/lake" in capsys.readouterr().err
    monkeypatch.delenv("LAKE_KMS_KEY_ID")

    assert s3_setup.main([]) == 0
    assert s3_setup.main(["--check"]) == 0
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    lake = LakeStorage(url=f"s3://{bucket}/lake", catalog_uri=postgres_catalog)
    lake.write_arrow(["raw", "src", "t"], "2024-01-01", pa.table({"x": [1, 2]}))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"]]
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".metadata.json") for k in keys)
    for key in keys:
        assert client.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256", key


def test_kms_uploads_name_the_key() -> None:
    lake = LakeStorage(url="s3://bucket/lake", catalog_uri="sqlite://", kms_key_id="arn:aws:kms:eu-west-1:1:key/k")
    assert lake.sse_args == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:eu-west-1:1:key/k"}
    assert LakeStorage(url="s3://bucket/lake", catalog_uri="sqlite://").sse_args == {"ServerSideEncryption": "AES256"}
