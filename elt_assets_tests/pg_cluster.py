"""A throwaway PostgreSQL cluster on 127.0.0.1, for tests and CI.

`python -m elt_assets_tests.pg_cluster start DIR` creates and starts a cluster in DIR on
a free port and prints its admin URL; `stop DIR` stops it. Tests use the same class when
CI has not started one for them. As root, the server runs as the `postgres` user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

URL_FILE = "admin_url"


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl, if a PostgreSQL server is installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(os.path.realpath(on_path)).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A cluster in `root`/data, listening on 127.0.0.1 only, trusting local connections."""

    def __init__(self, root: Path, bin_dir: Path, port: int | None = None):
        self.root = Path(root)
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.data = self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> "Cluster":
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        (self.root / URL_FILE).write_text(self.admin_url)
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pg_cluster")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    bin_dir = find_bin_dir()
    if bin_dir is None:
        print("no PostgreSQL server binaries (initdb, pg_ctl) found", file=sys.stderr)
        return 2
    cluster = Cluster(args.root, bin_dir)
    if args.action == "start":
        print(cluster.start().admin_url)
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
