"""Ingestion errors, split by whether a retry can help.

* `SourceUnavailable`: deterministic (bad credentials, 401/403/404, missing table, no file, schema drift
  under policy `fail`, a file that cannot be read as configured); retrying the same run cannot succeed.
* `SourceTemporarilyUnavailable`: transient (connection refused, timeout, 429/5xx after the source's own
  retries); the asset's retry policy may run it again.

Messages name the source and the cause and never contain a password or token.
"""

from __future__ import annotations


class IngestionError(RuntimeError):
    retryable = False


class SourceUnavailable(IngestionError):
    """The source cannot be read at all, and retrying will not change that."""


class SchemaDriftError(SourceUnavailable):
    """Columns changed against the previous committed partition and the table's policy is `fail`."""


class UnreadableFile(SourceUnavailable):
    """A delivered file cannot be ingested as configured (wrong delimiter, a required column absent,
    two columns with one name): the file or the table's config must change, so it fails the step
    instead of quarantining every row."""


class SourceTemporarilyUnavailable(IngestionError):
    """The source could not be reached now; a later attempt may succeed."""

    retryable = True
