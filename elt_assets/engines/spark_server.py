"""A local Spark Connect server whose catalog persists in a folder, for development and tests.

`python -m elt_assets.engines.spark_server start DIR` starts the Spark that the pyspark
wheel ships (its `bin/spark-submit` running `SparkConnectServer`) in the background,
detached from the caller, on 127.0.0.1 only, and prints `sc://127.0.0.1:PORT` as the last
line once a Spark Connect session reads its catalog. `stop DIR` stops it; `status DIR`
prints its URL. Table definitions live in a Hive metastore on embedded Derby in
DIR/metastore_db and the data in DIR/warehouse, so a later server on the same DIR sees the
same tables (the in-memory catalog would forget them). Only one server can use a DIR at a
time: embedded Derby locks its database. Logs, the pid and the URL are kept in DIR.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
PID_FILE = "server.pid"
URL_FILE = "server.url"
LOG_FILE = "logs/server.log"
INSTALL_JAVA = "Java 17 or newer is needed: apt-get install openjdk-17-jre-headless"
INSTALL_PYSPARK = 'pyspark with Spark Connect is needed: pip install -e ".[spark]"'


class SparkServerError(RuntimeError):
    """The server could not be started; the message says why (with the log's tail)."""


def missing_requirement() -> str | None:
    """What to install before a server can run here, or None when Java and pyspark are there."""
    java = shutil.which("java") or shutil.which("java", path=os.path.join(os.environ.get("JAVA_HOME", "/-"), "bin"))
    try:
        version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr if java else ""
    except (OSError, subprocess.SubprocessError):
        version = ""
    major = re.search(r'version "(1\.)?(\d+)', version)
    if not major or int(major.group(2)) < 17:
        return INSTALL_JAVA
    home = spark_home()
    if home is None or not list((home / "jars").glob("spark-connect_*.jar")):
        return INSTALL_PYSPARK
    client = ("grpc", "pyarrow", "pandas", "google.protobuf")
    return INSTALL_PYSPARK if any(importlib.util.find_spec(name) is None for name in client) else None


def spark_home() -> Path | None:
    """The Spark distribution inside the installed pyspark package (found without importing it)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.origin:
        return None
    home = Path(spec.origin).parent
    return home if (home / "bin" / "spark-submit").exists() else None


def free_port() -> int:
    """A port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_conf(root: Path, port: int) -> dict[str, str]:
    """The server's Spark settings: loopback only, a Hive catalog kept in `root`, UTC, ANSI."""
    return {
        "spark.elt.serverDir": str(root),  # lets the readiness probe recognise this server
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.port.maxRetries": "0",  # a taken port fails, never a silent other one
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
        "spark.hadoop.hive.exec.scratchdir": str(root / "tmp" / "hive"),
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.local.dir": str(root / "tmp"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root / 'derby'} -Djava.io.tmpdir={root / 'tmp'}",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",
        # One machine: a few shuffle partitions, not Spark's 200 (each is a task per query).
        "spark.sql.shuffle.partitions": "4",
    }


def _alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) Spark Connect server process."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child that has exited
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and SERVER_CLASS.encode() in cmdline


def running_pid(root: Path) -> int | None:
    """The pid of the server for `root`, if one is running; stale pid files are removed."""
    pid_file = Path(root) / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid):
        return pid
    _forget(root)
    return None


def _forget(root: Path) -> None:
    for name in (PID_FILE, URL_FILE):
        (Path(root) / name).unlink(missing_ok=True)


def status(root: Path) -> str | None:
    """The URL of the running server for `root`, or None."""
    if running_pid(root) is None:
        return None
    url_file = Path(root) / URL_FILE
    return url_file.read_text().strip() if url_file.exists() else None


def _log_excerpt(root: Path, lines: int = 25) -> str:
    """The log's first error lines (the cause; shutdown noise follows it) and its last lines."""
    try:
        text = (Path(root) / LOG_FILE).read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    errors = [line for line in text if " ERROR " in line or "Exception" in line][:6]
    return "\n".join([*errors, "...", *text[-lines:]] if errors else text[-lines:])


def _answers(url: str, root: Path) -> bool:
    """Whether the server on `url` is ours (another one on the port must not pass) and reads
    its catalog: the metastore opens lazily (about 12 s), and a broken one should fail start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark warns about pandas versions on import
        from pyspark.sql import SparkSession

        session = SparkSession.builder.remote(url).create()
    try:
        if session.conf.get("spark.elt.serverDir", None) != str(root):
            return False
        return session.sql("show databases").count() >= 1
    finally:
        session.stop()


def start(root: Path, port: int | None = None, memory: str = "2g", timeout: float = 120.0,
          extra_conf: dict[str, str] | None = None) -> str:
    """Start (or find) the server for `root` and return its URL once it answers a query."""
    root = Path(root).resolve()
    for folder in ("logs", "tmp", "derby", "conf"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    with open(root / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two starts on one DIR: the second finds the first
        url = status(root)
        if url:
            return url
        home = spark_home()
        if home is None:
            raise SparkServerError(INSTALL_PYSPARK)
        port = port or free_port()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SparkServerError(f"port {port} on 127.0.0.1 is already in use")
        url = f"sc://127.0.0.1:{port}"
        conf = {**server_conf(root, port), **(extra_conf or {})}
        command = [str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--name", f"elt-assets ({root})",
                   "--master", "local[2]", "--driver-memory", memory]
        command += [part for key, value in conf.items() for part in ("--conf", f"{key}={value}")]
        # Our Spark only: no other SPARK_HOME or spark-defaults.conf; UDF workers use this Python.
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_CONF_DIR": str(root / "conf"),
               "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
        with open(root / LOG_FILE, "ab") as log:
            # spark-submit execs the JVM, so this pid is the server's; its own session and
            # process group detach it from the caller and let stop() reach its Python workers.
            process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        (root / PID_FILE).write_text(f"{process.pid}\n")
        deadline, last_error = time.monotonic() + timeout, ""
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                if _answers(url, root):
                    (root / URL_FILE).write_text(url + "\n")
                    return url
                last_error = f"another server answers on port {port}"
            except Exception as error:  # not listening yet, or the session is not ready yet
                last_error = str(error).splitlines()[0] if str(error) else type(error).__name__
            time.sleep(1)
        failure = (f"exited with code {process.returncode}" if process.poll() is not None
                   else f"did not answer within {timeout:.0f} s (last: {last_error})")
        _terminate(process.pid, 10)
        _forget(root)
        raise SparkServerError(f"Spark Connect server for {root} {failure}; from {root / LOG_FILE}:\n{_log_excerpt(root)}")


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM the server's process group (JVM shutdown hooks run), SIGKILL it after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.2)


def stop(root: Path, timeout: float = 30.0) -> bool:
    """Stop the server for `root`; False when none was running."""
    root = Path(root).resolve()
    pid = running_pid(root)
    if pid is None:
        return False
    _terminate(pid, timeout)
    _forget(root)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elt-assets spark-server", description="A local Spark Connect server kept in DIR.")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("dir", type=Path, help="folder for the catalog, warehouse, logs and pid")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--memory", default="2g", help="driver memory (default 2g)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark setting")
    args = parser.parse_args(argv)
    if args.action == "status":
        url = status(args.dir)
        print(url or f"no Spark Connect server running for {args.dir}", file=sys.stdout if url else sys.stderr)
        return 0 if url else 1
    if args.action == "stop":
        stopped = stop(args.dir)
        print(f"stopped the Spark Connect server for {args.dir}" if stopped else f"no Spark Connect server was running for {args.dir}")
        return 0
    missing = missing_requirement()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    if any("=" not in item for item in args.conf):
        parser.error("--conf takes KEY=VALUE")
    url = status(args.dir)
    if url:
        print(f"a Spark Connect server for {args.dir} is already running")
        print(url)
        return 0
    started = time.monotonic()
    try:
        url = start(args.dir, args.port, args.memory, args.timeout, dict(item.split("=", 1) for item in args.conf))
    except SparkServerError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Spark Connect server for {args.dir} ready after {time.monotonic() - started:.1f} s; log: {Path(args.dir) / LOG_FILE}")
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
