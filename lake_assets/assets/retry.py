"""The retry policy of the steps where a retry can help (sources, derived tables, the warehouse load).

Only failures that may pass on a later attempt use it: connection refused, timeouts, throttling, a
dropped warehouse connection. Data errors and deterministic source errors raise
`Failure(allow_retries=False)` and fail at once. Delays grow exponentially from `retries.delay_seconds`
(`delay`, `3 x delay`, `7 x delay` ...) and are spread by up to ± `delay` so that runs which failed
together (one database restart, one throttled API) do not all come back at the same instant.
"""

from dagster import Backoff, Jitter, RetryPolicy

from lake_assets.config import RetriesConfig

_BACKOFF = {"exponential": Backoff.EXPONENTIAL, "linear": Backoff.LINEAR, "constant": None}
_JITTER = {"plus_minus": Jitter.PLUS_MINUS, "full": Jitter.FULL, "none": None}


def retry_policy(retries: RetriesConfig) -> RetryPolicy:
    return RetryPolicy(
        max_retries=retries.max,
        delay=retries.delay_seconds,
        backoff=_BACKOFF[retries.backoff],
        jitter=_JITTER[retries.jitter],
    )
