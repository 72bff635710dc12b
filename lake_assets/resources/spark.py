"""The Spark session: one per run process, built from the pipeline config. A run whose selection has a
step that uses Spark starts it in the background as the run begins, so the JVM's start overlaps the
raw ingestion instead of delaying the first Spark step; a run of the raw tables alone (or of the
warehouse loads alone), which touches no DataFrame, starts none (`BackgroundStartPySparkResource`).

The driver JVM maps a class-data-sharing archive of Spark's classes when this machine has one, and
a run without one has it built in the background for the next (`resources/jvm_class_archive.py`).

`spark.master` may be `local[*]` (default), a cluster URL (`spark://host:7077`) or a Spark Connect URL
(`sc://host:15002`), in which case the session is a Spark Connect client session. On a cluster the run
process is the driver (client mode) and executors do the lake's file I/O: README, "Running on a Spark
cluster".
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable

from dagster import AssetKey, InitResourceContext
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr

from lake_assets.config import SparkConfig
from lake_assets.resources import jvm_class_archive

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
    # A write partitioned by a column (the fact's sale dates) keeps one open file per date in each task
    # instead of sorting every row by date first: a day's lines fall in a few dates (the sort spilled
    # to disk at 5M lines; the fact's write ~0.5-1 s faster at 5M in three A/B pairs). Over four dates in
    # one task, Spark sorts the rest as before. The planned write would add the sort regardless.
    "spark.sql.optimizer.plannedWrite.enabled": "false",
    "spark.sql.maxConcurrentOutputFileWriters": "4",
}
# HotSpot leaves methods over 8 KB of bytecode interpreted; the generated code of a wide typing
# projection is that large and would run interpreted (measured ~15-25% of the typing CPU). Prepended to any
# `spark.conf` value of the same key, so configured options still apply (and win where they clash).
# The throughput collector: the driver runs batch jobs, where pause times do not matter and G1's
# concurrent marking and write barriers cost a share of 2 cores (measured: 8-10% less JVM CPU writing
# 3M fact rows, in three A/B rounds).
# The optimizing compiler (C2) only for methods ten times hotter than HotSpot's default: a run is one
# short-lived JVM that plans and generates code for a few hundred queries, and on 2 cores C2 compiling
# methods that then run a few times took half the JVM's CPU (six 1,000-member dimension steps in one
# JVM: 31 of 61 CPU seconds in compiler threads). Measured end to end: the 1,000-line day ~2 s faster in
# three A/B rounds; the 500,000-line day, whose row loops pass the higher thresholds, and a 30-day
# backfill in one run were not slower.
C2_THRESHOLDS = "-XX:Tier4InvocationThreshold=50000 -XX:Tier4CompileThreshold=60000 -XX:Tier4BackEdgeThreshold=400000"
JVM_OPTIONS = f"-XX:-DontCompileHugeMethods -XX:+UseParallelGC {C2_THRESHOLDS}"
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
            # The class archive describes this machine's JVM: the driver's, never a cluster's executors.
            archive = jvm_class_archive.java_options(JVM_OPTIONS) if key == "spark.driver.extraJavaOptions" else ""
            conf[key] = " ".join(o for o in (JVM_OPTIONS, archive, conf.get(key, "")) if o)
    return conf


# Key prefixes of the assets whose steps (and checks) never touch a DataFrame: the ingestion writes Arrow,
# the warehouse loads read the lake's files with Arrow.
NO_SPARK_PREFIXES = ("raw", "warehouse")


def selection_uses_spark(selected: Iterable[AssetKey] | None) -> bool:
    """Whether a run of these asset keys (None: the whole graph) will need the SparkSession."""
    if selected is None:
        return True
    return any(key.path[0] not in NO_SPARK_PREFIXES for key in selected)


class BackgroundStartPySparkResource(LazyPySparkResource):
    """`LazyPySparkResource` whose session starts in a background thread at run start when the run's
    asset selection needs Spark; the first step that asks for the session waits for that start (and
    raises its error, if it failed, by starting the session itself). Elsewhere (no run, a selection
    without Spark steps) the session starts on first use, as the lazy resource's does."""

    _starting: threading.Thread | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run = context.run
        if run is not None and selection_uses_spark(run.asset_selection):
            self._starting = threading.Thread(target=self._start_quietly, name="spark-session-start", daemon=True)
            self._starting.start()

    def _start_quietly(self) -> None:
        # An error here is raised again by the step that needs the session, where Dagster reports it.
        try:
            self._init_session()
        except Exception:  # noqa: BLE001
            pass

    def _init_session(self) -> None:
        # Every use (spark_session, spark_context) waits for a start under way rather than racing it.
        if self._starting is not None and self._starting is not threading.current_thread():
            self._starting.join()
        starts = self._spark_session is None
        super()._init_session()
        if starts:
            # Built, detached, for the next runs when this machine has no archive yet (else a no-op).
            jvm_class_archive.ensure_archive(JVM_OPTIONS)


def build_spark_resource(config: SparkConfig) -> BackgroundStartPySparkResource:
    return BackgroundStartPySparkResource(spark_config=spark_conf_for(config))
