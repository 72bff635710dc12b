"""The S3 clients of the lake and of S3 file sources: Arrow's filesystem (reads and writes of Parquet and
source files) and boto3 (listings, uploads with encryption arguments).

Both take the endpoint from `AWS_ENDPOINT_URL` (MinIO, moto; its scheme decides HTTP or HTTPS, HTTPS
without one) and credentials from the usual AWS variables; Arrow's region from `AWS_DEFAULT_REGION`
(default us-east-1).
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow.fs as pafs


def s3_filesystem() -> pafs.S3FileSystem:
    """Arrow's S3 filesystem for the configured endpoint."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    kwargs: dict[str, Any] = {"region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
    return pafs.S3FileSystem(**kwargs)


def s3_client() -> Any:
    """A boto3 S3 client for the configured endpoint (boto3 is imported on first use: local lakes never need it)."""
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
