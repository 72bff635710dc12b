"""A Spark standalone cluster on loopback, started from the installed pyspark package: one Master and
one Worker (1 core, small memory), each a `bin/spark-class` JVM process of this test session.

`standalone_cluster` yields once the worker has registered with the master (read from the master's
JSON status page) and stops both processes afterwards. A cluster that does not come up skips the test
on a laptop and fails it under CI (`CI=true`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

from .conftest import service_missing

SPARK_HOME = Path(pyspark.__file__).resolve().parent
START_TIMEOUT_SECONDS = 120
WORKER_MEMORY = "1g"


@dataclass(frozen=True)
class StandaloneCluster:
    """`master_url` for `spark.master`; `status_url` is the master's JSON status page."""

    master_url: str
    status_url: str

    def status(self) -> dict:
        with urllib.request.urlopen(self.status_url, timeout=5) as response:
            return json.loads(response.read())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(main_class: str, args: list[str], log: Path) -> subprocess.Popen:
    # spark-class execs the JVM: the process (and its group) is the daemon itself.
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    return subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), main_class, *args], env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for_worker(cluster: StandaloneCluster, processes: list[subprocess.Popen], logs: list[Path]) -> str | None:
    """None once one worker is ALIVE at the master, else why not (a process died, or the time ran out)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                return f"{log.name} exited with {process.returncode}: {log.read_text()[-2000:]}"
        try:
            if cluster.status().get("aliveworkers") == 1:
                return None
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass  # the master's web UI is not up yet
        time.sleep(1)
    return f"no worker registered within {START_TIMEOUT_SECONDS} s: {logs[-1].read_text()[-2000:]}"


def standalone_cluster(directory: Path) -> Iterator[StandaloneCluster]:
    """Generator behind the `spark_cluster` fixture: logs and the worker's work dir go to `directory`."""
    master_port, master_ui, worker_ui = _free_port(), _free_port(), _free_port()
    cluster = StandaloneCluster(f"spark://127.0.0.1:{master_port}", f"http://127.0.0.1:{master_ui}/json/")
    logs = [directory / "master.log", directory / "worker.log"]
    processes = [_start("org.apache.spark.deploy.master.Master",
                        ["--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(master_ui)], logs[0])]
    try:
        processes.append(_start("org.apache.spark.deploy.worker.Worker",
                                ["--host", "127.0.0.1", "--cores", "1", "--memory", WORKER_MEMORY,
                                 "--webui-port", str(worker_ui), "--work-dir", str(directory / "work"),
                                 cluster.master_url], logs[1]))
        problem = _wait_for_worker(cluster, processes, logs)
        if problem:
            service_missing("a Spark standalone cluster", problem)
        yield cluster
    finally:
        for process in reversed(processes):
            _stop(process)
