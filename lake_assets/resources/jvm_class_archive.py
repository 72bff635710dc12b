"""A class-data-sharing archive of the Spark driver JVM's classes, so that a run's JVM maps Spark's
classes from one file instead of loading and verifying them from the jars again: about 1.4 s less to
start the session and 1.2 s less in its first jobs on this project's 2-core machine (measured A/B in
pairs; see the README, "Spark").

HotSpot (JDK 13 and later) dumps the classes a JVM loaded into an archive when it exits
(`-XX:ArchiveClassesAtExit`) and maps such an archive into later JVMs (`-XX:SharedArchiveFile`). An
archive is valid only for the Java build and the class path it was dumped with, so there is one per
Java installation and Spark jars directory: `<cache>/spark-classes-<key>.jsa`, the key a hash of the
java binary, the JVM options and the jars directory's listing. `<cache>` is `$LAKE_JVM_CACHE_DIR`, else
`$XDG_CACHE_HOME/lake_assets`, else `~/.cache/lake_assets`.

Guarantees:
* A run never waits for an archive and never fails because of one. When none exists, the run goes on
  without it and starts one detached builder process (at the lowest CPU priority) that runs a small
  Spark workload with `-XX:ArchiveClassesAtExit` into a temporary file and moves it into place only
  after that JVM has exited, so a half-written archive is never used. A lock file keeps concurrent
  runs from building twice; a build that failed is retried after `RETRY_AFTER` seconds.
* An archive HotSpot cannot use (a JDK update, moved jars) is skipped by the JVM (`-Xshare:auto`, the
  default): the run starts as it would without one.
* The archive holds class metadata only (no data, no configuration): about 170 MB per Java/Spark pair.
  A run that maps an archive marks it used (its modification time); when a new one is built, only the
  `KEEP_ARCHIVES` most recently used stay in `<cache>` (each new venv or Java update makes another key,
  and the old archives would otherwise pile up). A JVM still mapping a deleted archive keeps its mapping.
* `LAKE_JVM_CLASS_ARCHIVE=0` turns it off: no option is added and nothing is built.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RETRY_AFTER = 3600.0
KEEP_ARCHIVES = 3  # a machine with a few venvs or Java installations keeps one archive for each
_PREFIX = "spark-classes-"


def cache_dir() -> Path:
    """Where archives are kept (see the module docstring)."""
    configured = os.environ.get("LAKE_JVM_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lake_assets"


def spark_home() -> Path:
    """The Spark installation PySpark launches: `$SPARK_HOME`, else the pyspark package itself."""
    configured = os.environ.get("SPARK_HOME")
    if configured:
        return Path(configured)
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _java() -> Path | None:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def archive_path(jvm_options: str = "") -> Path | None:
    """This machine's archive path for the Java and Spark PySpark would launch, started with
    `jvm_options` (the file may not exist yet); None when no java binary or jars directory is found."""
    java, jars = _java(), spark_home() / "jars"
    if java is None or not jars.is_dir():
        return None
    digest = hashlib.sha256(jvm_options.encode())
    for part in (java, *sorted(jars.iterdir())):
        stat = part.stat()
        digest.update(f"{part}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return cache_dir() / f"{_PREFIX}{digest.hexdigest()[:16]}.jsa"


def enabled() -> bool:
    return os.environ.get("LAKE_JVM_CLASS_ARCHIVE", "1").strip().lower() not in ("0", "false", "off", "no")


def java_options(jvm_options: str = "") -> str:
    """The option that maps the archive into a driver JVM started with `jvm_options`, when it exists;
    else "" (and `ensure_archive` builds it for later runs)."""
    if not enabled():
        return ""
    path = archive_path(jvm_options)
    if path is None or not path.is_file():
        return ""
    try:
        os.utime(path)  # used now: pruning keeps the archives runs use
    except OSError:
        pass  # a read-only cache still serves its archive
    return f"-XX:SharedArchiveFile={path}"


def prune(cache: Path, keep: int = KEEP_ARCHIVES) -> list[Path]:
    """Delete all but the `keep` most recently used archives in `cache`, and builders' leftovers (a
    temporary file of a build that died) older than `RETRY_AFTER`; returns what was deleted."""
    def used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return 0.0  # deleted meanwhile by another run's pruning

    archives = sorted(cache.glob(f"{_PREFIX}*.jsa"), key=used, reverse=True)
    leftovers = [p for p in cache.glob(f"{_PREFIX}*.tmp") if time.time() - used(p) > RETRY_AFTER]
    deleted = []
    for path in [*archives[keep:], *leftovers]:
        path.unlink(missing_ok=True)
        deleted.append(path)
    return deleted


def ensure_archive(jvm_options: str = "") -> None:
    """Start the detached builder when the archive is missing and nobody is building it; returns at
    once. `jvm_options`: the driver's own options (its garbage collector, say), so the archive is
    dumped by a JVM configured as the ones that map it. Errors (an unwritable cache directory, say)
    are swallowed: the archive is an optimisation."""
    if not enabled():
        return
    try:
        path = archive_path(jvm_options)
        if path is None or path.is_file() or not _take_lock(path):
            return
        subprocess.Popen(
            [sys.executable, "-m", "lake_assets.resources.jvm_class_archive", str(path), jvm_options],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the run; no terminal signal reaches it
        )
    except OSError:
        return


def _lock(path: Path) -> Path:
    return path.with_suffix(".lock")


def _take_lock(path: Path) -> bool:
    lock = _lock(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        if time.time() - lock.stat().st_mtime > RETRY_AFTER:
            lock.unlink(missing_ok=True)  # a build that died or failed long ago
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


# The builder's workload: the kinds of work a run does (text parsing and typing, windows, joins,
# aggregation, Parquet and Arrow), so that their classes are in the archive.
_WORKLOAD = """
import sys
from pyspark.sql import SparkSession, Window, functions as F
spark = SparkSession.builder.getOrCreate()
out = sys.argv[1]
raw = spark.createDataFrame([(str(i), f" {i % 97}.50 ", f"2024-01-{i % 28 + 1:02d} 10:00:00", f"k{i % 13}")
                             for i in range(2000)], "id string, amount string, at string, key string")
typed = raw.select(F.trim("id").cast("bigint").alias("id"), F.try_to_number(F.trim("amount"), F.lit("999.99"))
                   .alias("amount"), F.try_to_timestamp("at", F.lit("yyyy-MM-dd HH:mm:ss")).alias("at"),
                   F.regexp_replace("key", "[^a-z0-9]", "").alias("key"), F.sha2("key", 256).alias("h"))
latest = typed.withColumn("r", F.row_number().over(Window.partitionBy("key").orderBy(F.desc("at")))).filter("r = 1")
joined = typed.join(F.broadcast(latest.select("key", F.col("id").alias("first"))), "key", "left") \\
    .join(typed.groupBy("key").agg(F.sum("amount").alias("total"), F.countDistinct("id").alias("n")), "key")
joined.withColumn("day", F.to_date("at")).write.mode("overwrite").partitionBy("day").parquet(out)
back = spark.read.parquet(out)
back.localCheckpoint().agg(F.count(F.lit(1)), F.max("total")).collect()
back.limit(100).toArrow()
spark.stop()
"""


def build(path: Path, jvm_options: str = "") -> None:
    """Run the workload in a JVM (with `jvm_options`) that dumps its classes at exit, then move the
    archive into place."""
    lock = _lock(path)
    with tempfile.TemporaryDirectory(prefix="lake-jvm-archive-") as work:
        script, dumped = Path(work) / "workload.py", Path(work) / "classes.jsa"
        script.write_text(_WORKLOAD, encoding="utf-8")
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        # spark-submit returns when its JVM has exited, i.e. after the archive is written.
        dump = f"{jvm_options} -XX:ArchiveClassesAtExit={dumped}".strip()
        result = subprocess.run(
            ["nice", "-n", "19", str(spark_home() / "bin" / "spark-submit"), "--master", "local[2]",
             "--conf", "spark.ui.enabled=false", "--driver-java-options", dump, str(script), str(Path(work) / "out")],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )
        if result.returncode != 0 or not dumped.is_file():
            return  # the lock stays: no new attempt before RETRY_AFTER
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        shutil.move(str(dumped), staged)
        os.replace(staged, path)
    lock.unlink(missing_ok=True)
    prune(path.parent)


if __name__ == "__main__":
    build(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")
