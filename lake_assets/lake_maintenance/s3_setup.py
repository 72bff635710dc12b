"""The S3 lake bucket's protections: versioning and default encryption.

* Versioning keeps overwritten and deleted objects recoverable (a second line of defence behind
  Iceberg snapshots; expire old versions with a bucket lifecycle rule).
* Default encryption covers the Iceberg metadata files pyiceberg writes without a per-object SSE
  header; lake_assets' own data-file uploads request SSE explicitly. SSE-S3 (AES256), or SSE-KMS
  with `lake.kms_key_id` when set.

`lake-s3-setup` turns both on; `lake-s3-setup --check` changes nothing and exits 1 naming what is
missing. The pipeline itself does not check the bucket on every run (it would need
`s3:GetEncryptionConfiguration` on the run's role); run the check in deployment instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from lake_assets.config import load_config
from lake_assets.lake_maintenance import lake_from_config
from lake_assets.resources.lake_storage import LakeStorage


def _wanted_rule(lake: LakeStorage) -> dict[str, Any]:
    if lake.kms_key_id:
        return {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": lake.kms_key_id}
    return {"SSEAlgorithm": "AES256"}


def bucket_problems(lake: LakeStorage) -> list[str]:
    """What the lake bucket lacks (empty: versioning on and default encryption as configured)."""
    from botocore.exceptions import ClientError

    client, bucket = lake.s3_client, lake.bucket
    problems = []
    status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        problems.append(f"s3://{bucket}: versioning is {status or 'off'} (want Enabled)")
    try:
        rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    defaults = [r.get("ApplyServerSideEncryptionByDefault", {}) for r in rules]
    wanted = _wanted_rule(lake)
    if not defaults:
        problems.append(f"s3://{bucket}: no default encryption (want {wanted['SSEAlgorithm']})")
    elif not any(d.get("SSEAlgorithm") == wanted["SSEAlgorithm"]
                 and (not lake.kms_key_id or d.get("KMSMasterKeyID") == lake.kms_key_id) for d in defaults):
        found = ", ".join(f"{d.get('SSEAlgorithm')} {d.get('KMSMasterKeyID', '')}".strip() for d in defaults)
        want = " ".join(str(v) for v in wanted.values())
        problems.append(f"s3://{bucket}: default encryption is {found} (want {want}, from lake.kms_key_id)")
    return problems


def setup_bucket(lake: LakeStorage) -> list[str]:
    """Enable versioning and default encryption on the lake bucket; returns what was changed."""
    client, bucket = lake.s3_client, lake.bucket
    before = bucket_problems(lake)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": _wanted_rule(lake)}
    if lake.kms_key_id:
        rule["BucketKeyEnabled"] = True  # fewer KMS requests (and costs) per object
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    return before


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lake-s3-setup",
        description="Enable versioning and default encryption (SSE-S3 AES256, or SSE-KMS with lake.kms_key_id) on "
        "the S3 lake bucket. With --check: change nothing, exit 1 naming what is missing.",
    )
    parser.add_argument("--config", help="pipeline config file (default: LAKE_CONFIG or the bundled sample)")
    parser.add_argument("--check", action="store_true", help="verify only; exit 1 if something is missing")
    args = parser.parse_args(argv)
    lake = lake_from_config(load_config(args.config))
    if not lake.is_s3:
        print(f"lake-s3-setup: the lake {lake.url} is not on S3; nothing to do", file=sys.stderr)
        return 2
    if args.check:
        problems = bucket_problems(lake)
        for problem in problems:
            print(f"missing: {problem}", file=sys.stderr)
        if not problems:
            print(f"s3://{lake.bucket}: versioning and default encryption are on")
        return 1 if problems else 0
    fixed = setup_bucket(lake)
    for problem in fixed:
        print(f"fixed: {problem}")
    remaining = bucket_problems(lake)
    for problem in remaining:
        print(f"still missing: {problem}", file=sys.stderr)
    if not remaining:
        print(f"s3://{lake.bucket}: versioning and default encryption are on")
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
