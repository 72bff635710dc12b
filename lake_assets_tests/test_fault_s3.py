"""Faults of S3: throttling (503 SlowDown) and server errors (500 InternalError) between the lake and
a moto S3 server, injected by a small HTTP proxy in front of moto that answers the first requests of
a kind with the error and forwards everything else.

* Transient: the first uploads of the data file and of the Iceberg metadata are throttled and the
  first read fails: the clients' own retries (boto3 for data files, Arrow's AWS SDK for metadata and
  reads) absorb them, and the partition commits once.
* Persistent: every data-file upload is throttled: the write fails naming the throttling, readers see
  the previous commit, and the rerun after the outage commits the partition once.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pytest

from lake_assets.resources.lake_storage import LakeStorage

from .conftest import S3Server

pytestmark = pytest.mark.services  # moto S3 and a PostgreSQL catalog

KEY = ["raw", "src", "table"]
DAY = "2024-01-01"
SLOW_DOWN = (503, "SlowDown", "Please reduce your request rate.")
INTERNAL = (500, "InternalError", "We encountered an internal error. Please try again.")


@dataclass
class Fault:
    """Answer `times` requests for which `matches(method, path)` holds with `error`."""

    matches: Callable[[str, str], bool]
    error: tuple[int, str, str]
    times: int
    served: list[str] = field(default_factory=list)


@dataclass
class FaultyS3:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if len(fault.served) < fault.times and fault.matches(method, path):
                    fault.served.append(f"{method} {path}")
                    return fault
        return None


def _handler(proxy: FaultyS3) -> type[BaseHTTPRequestHandler]:
    upstream = urlparse(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            """The request body as sent: a chunked body with its framing and trailers (the AWS C++ SDK
            sends `aws-chunked` content with a checksum trailer that way), forwarded as it came."""
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            raw = b""
            while True:
                size_line = self.rfile.readline()
                raw += size_line
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while True:  # trailers, then the empty line that ends the body
                        line = self.rfile.readline()
                        raw += line
                        if line in (b"\r\n", b"\n", b""):
                            return raw
                raw += self.rfile.read(size) + self.rfile.readline()

        def _relay(self) -> None:
            body = self._body()
            fault = proxy.fault_for(self.command, self.path)
            if fault is not None:
                status, code, message = fault.error
                payload = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if self.command != "HEAD" else b"")
                return
            # Forwarded as received (a chunked body keeps its Transfer-Encoding and framing); `Expect:
            # 100-continue` was already answered by this server.
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            self.send_response(response.status)
            # A HEAD answer's Content-Length is the object's size (the client sizes its reads by it).
            dropped = ("transfer-encoding", "connection") + (() if self.command == "HEAD" else ("content-length",))
            for name, value in response.getheaders():
                if name.lower() not in dropped:
                    self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay  # noqa: N815 - http.server API

    return Handler


@pytest.fixture
def faulty_s3(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3]:
    """A fault-injecting proxy in front of the moto server; the lake's clients talk to the proxy."""
    proxy = FaultyS3(upstream=s3.endpoint)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def _data_file(method: str, path: str) -> bool:
    return method == "PUT" and "/batch-" in path and path.endswith(".parquet")


def _metadata_file(method: str, path: str) -> bool:
    return method == "PUT" and "/metadata/" in path


def _data_files(lake: LakeStorage) -> list[str]:
    return [task.file.file_path for task in lake.load_table(KEY).scan().plan_files()]


def test_throttled_and_failing_requests_are_retried_and_the_partition_commits_once(
    faulty_s3: FaultyS3, s3: S3Server, postgres_catalog: str
) -> None:
    lake = LakeStorage(url=f"s3://{s3.make_bucket()}/prefix", catalog_uri=postgres_catalog)
    faulty_s3.faults = [
        Fault(_data_file, SLOW_DOWN, times=2),
        Fault(_metadata_file, SLOW_DOWN, times=2),
        Fault(lambda method, path: method == "GET" and "ingest_date" in path and "/batch-" in path, INTERNAL, times=1),
    ]
    lake.write_arrow(KEY, DAY, pa.table({"x": [1, 2, 3]}), state={"cursor": "a"})
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [1, 2, 3]
    assert [len(f.served) for f in faulty_s3.faults] == [2, 2, 1]  # every fault was met and got past
    assert lake.commit_info(KEY, DAY).rows == 3
    assert len(_data_files(lake)) == 1  # one commit of one batch, nothing added twice


def test_an_s3_outage_fails_the_write_clearly_and_the_rerun_commits_once(
    faulty_s3: FaultyS3, s3: S3Server, postgres_catalog: str, tmp_path: Path
) -> None:
    lake = LakeStorage(url=f"s3://{s3.make_bucket()}/prefix", catalog_uri=postgres_catalog)
    lake.write_arrow(KEY, DAY, pa.table({"x": [1, 2, 3]}))
    before = _data_files(lake)

    outage = Fault(_data_file, SLOW_DOWN, times=1000)
    faulty_s3.faults = [outage]
    with pytest.raises(Exception, match="SlowDown") as caught:
        lake.write_arrow(KEY, DAY, pa.table({"x": [4, 5]}))
    assert "reduce your request rate" in str(caught.value)
    assert len(outage.served) >= 2  # retried before giving up
    assert _data_files(lake) == before and lake.read_arrow(KEY, DAY).column("x").to_pylist() == [1, 2, 3]

    faulty_s3.faults = []  # the outage is over
    lake.write_arrow(KEY, DAY, pa.table({"x": [4, 5]}))
    assert lake.read_arrow(KEY, DAY).column("x").to_pylist() == [4, 5]
    assert lake.commit_info(KEY, DAY).rows == 2 and len(_data_files(lake)) == 1
