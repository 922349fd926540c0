"""A real S3-compatible server for tests: moto's server mode on 127.0.0.1, in its own process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from elt_assets_tests.pg_cluster import free_port
from elt_assets_tests.support import stop_process

# Dummy credentials: the server accepts any, and they keep boto3 off the machine's own.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "elt-test-key",
    "AWS_SECRET_ACCESS_KEY": "elt-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_for_port(port: int, process: subprocess.Popen, deadline_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 test server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the S3 test server did not listen on 127.0.0.1:{port} within {deadline_seconds}s")


@contextmanager
def running_s3_server() -> Iterator[str]:
    """Run moto's S3 server on a free port of 127.0.0.1; yields its endpoint URL.

    Sets dummy AWS credentials in the environment while it runs, and stops the server
    (and restores the environment) on the way out.
    """
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="elt-test-s3-"))
    saved = {name: os.environ.get(name) for name in TEST_CREDENTIALS}
    os.environ.update(TEST_CREDENTIALS)
    with (log_dir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)
        shutil.rmtree(log_dir, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on the test server."""
    name = f"landing-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def upload_tree(endpoint: str, local_root: Path, bucket: str, prefix: str) -> None:
    """Upload every file under local_root to s3://bucket/prefix/, keeping relative paths."""
    client = s3_client(endpoint)
    for path in sorted(local_root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local_root).as_posix()}")
