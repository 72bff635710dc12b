"""The Spark session: one per run process, built from the pipeline config, started when a step first
uses it (`LazyPySparkResource`): a run of the raw tables alone, which touches no DataFrame, starts none.

`spark.master` may be `local[*]` (default), a cluster URL (`spark://host:7077`) or a Spark Connect URL
(`sc://host:15002`), in which case the session is a Spark Connect client session. On a cluster the run
process is the driver (client mode) and executors do the lake's file I/O: README, "Running on a Spark
cluster".
"""

from __future__ import annotations

import os
import sys

from dagster_pyspark import LazyPySparkResource

from lake_assets.config import SparkConfig

# Deterministic timestamps (dates derived from timestamps must not depend on the host's timezone)
# and small shuffles: the defaults (200 partitions) waste most of a 2-core machine's time.
BASE_SPARK_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    # The web UI costs every run's start-up and a listener on every job; turn it on in `spark.conf`
    # (`spark.ui.enabled: "true"`) to look at stages.
    "spark.ui.enabled": "false",
    # INT96 timestamps overflow nanosecond readers at 9999-12-31 (the SCD2 "open" date).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
# HotSpot leaves methods over 8 KB of bytecode interpreted; the generated code of a wide typing
# projection is that large and would run interpreted (measured ~15-25% of the typing CPU). Prepended to any
# `spark.conf` value of the same key, so configured options still apply (and win where they clash).
JVM_OPTIONS = "-XX:-DontCompileHugeMethods"
_JAVA_OPTION_KEYS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")


def spark_conf_for(config: SparkConfig) -> dict[str, str]:
    """Flat Spark conf for the Spark resource, worker Python pinned to this interpreter (the same path
    on a cluster's workers; `spark.pyspark.python` in `config.conf` overrides it)."""
    # Workers must run the project's interpreter: the system python3 lacks pyarrow, and PySpark refuses
    # workers whose Python minor version differs from the driver's.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    conf = dict(BASE_SPARK_CONF)
    if config.master.startswith("sc://"):
        conf["spark.remote"] = config.master
    else:
        conf["spark.master"] = config.master
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
    conf.update(config.conf)
    if not config.master.startswith("sc://"):
        for key in _JAVA_OPTION_KEYS:
            conf[key] = f"{JVM_OPTIONS} {conf.get(key, '')}".strip()
    return conf


def build_spark_resource(config: SparkConfig) -> LazyPySparkResource:
    return LazyPySparkResource(spark_config=spark_conf_for(config))
