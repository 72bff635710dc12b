"""The Spark driver's class-data-sharing archive: built by a real JVM, mapped by a real one, never
built twice at once, and never in the way of a run (no archive: no option)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lake_assets.config import SparkConfig
from lake_assets.resources import jvm_class_archive
from lake_assets.resources.spark import JVM_OPTIONS, spark_conf_for


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKE_JVM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LAKE_JVM_CLASS_ARCHIVE", raising=False)
    return tmp_path / "cache"


def _driver_options() -> str:
    return spark_conf_for(SparkConfig())["spark.driver.extraJavaOptions"]


def test_no_archive_means_no_option_and_one_builder_at_a_time(cache: Path) -> None:
    path = jvm_class_archive.archive_path(JVM_OPTIONS)
    assert path is not None and path.parent == cache and not path.exists()
    assert "SharedArchiveFile" not in _driver_options()
    # The first caller takes the lock; a concurrent one does not build again.
    assert jvm_class_archive._take_lock(path)
    assert not jvm_class_archive._take_lock(path)
    # A lock older than RETRY_AFTER (a builder that died) is taken over.
    stale = time.time() - jvm_class_archive.RETRY_AFTER - 60
    os.utime(path.with_suffix(".lock"), (stale, stale))
    assert jvm_class_archive._take_lock(path)


def test_turned_off_adds_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = jvm_class_archive.archive_path(JVM_OPTIONS)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # present, but switched off
    monkeypatch.setenv("LAKE_JVM_CLASS_ARCHIVE", "0")
    assert "SharedArchiveFile" not in _driver_options()
    path.unlink()  # missing now: only the switch keeps a builder from starting (it would take the lock)
    jvm_class_archive.ensure_archive(JVM_OPTIONS)
    assert not path.with_suffix(".lock").exists()


def test_a_built_archive_is_mapped_by_the_driver_jvm(cache: Path, tmp_path: Path) -> None:
    path = jvm_class_archive.archive_path(JVM_OPTIONS)
    assert path is not None
    jvm_class_archive.build(path, JVM_OPTIONS)
    assert path.is_file() and path.stat().st_size > 10_000_000
    assert not list(cache.glob("*.lock")) and not list(cache.glob("*.tmp"))
    options = _driver_options()
    assert f"-XX:SharedArchiveFile={path}" in options
    assert options.startswith(JVM_OPTIONS)
    assert "SharedArchiveFile" not in spark_conf_for(SparkConfig())["spark.executor.extraJavaOptions"]
    # -Xshare:on makes a JVM that cannot map the archive fail at start instead of going on without it.
    script = tmp_path / "one_job.py"
    script.write_text("from pyspark.sql import SparkSession\n"
                      "s = SparkSession.builder.getOrCreate()\n"
                      "assert s.range(10).count() == 10\n"
                      "s.stop()\n", encoding="utf-8")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    result = subprocess.run(
        [str(jvm_class_archive.spark_home() / "bin" / "spark-submit"), "--master", "local[1]",
         "--conf", "spark.ui.enabled=false", "--driver-java-options", f"{options} -Xshare:on", str(script)],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def test_only_the_most_recently_used_archives_are_kept(cache: Path) -> None:
    cache.mkdir(parents=True)
    now = time.time()
    # Five archives of other venvs or Java installations, used 1..5 hours ago, and a dead builder's file.
    older = []
    for hours in range(1, 6):
        path = cache / f"spark-classes-{hours:016d}.jsa"
        path.write_bytes(b"x")
        os.utime(path, (now - hours * 3600, now - hours * 3600))
        older.append(path)
    dead = cache / "spark-classes-0000000000000009.4242.tmp"
    dead.write_bytes(b"x")
    os.utime(dead, (now - 2 * jvm_class_archive.RETRY_AFTER, now - 2 * jvm_class_archive.RETRY_AFTER))
    # This machine's archive, unused for a day: asking for the driver options marks it used.
    path = jvm_class_archive.archive_path(JVM_OPTIONS)
    assert path is not None
    path.write_bytes(b"x")
    os.utime(path, (now - 86400, now - 86400))
    assert f"-XX:SharedArchiveFile={path}" in _driver_options()
    assert path.stat().st_mtime >= now
    unrelated = cache / "notes.txt"
    unrelated.write_bytes(b"x")
    deleted = jvm_class_archive.prune(cache, keep=3)
    assert sorted(deleted) == sorted([*older[2:], dead])
    assert sorted(cache.iterdir()) == sorted([path, older[0], older[1], unrelated])
