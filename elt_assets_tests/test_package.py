"""The package as a container image gets it: a wheel built from what the Dockerfile copies,
installed outside the repository, carries the SQL and the sample (and not the tests), loads
the code location (served by the Dockerfile's CMD over gRPC to a workspace.yaml like the
webserver's), runs the quick start in an empty folder and materializes a day.

The wheel is installed into a fresh virtual environment without copying any dependency: a
.pth file puts this environment's site-packages after the venv's own, so the installed
elt_assets comes first, and the editable install's import hook (a .pth of its own, in a
folder the venv only appends to its path) is never loaded. Docker itself is not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import duckdb
import pytest

from elt_assets_tests.support import stop_process

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BUNDLED = "elt_assets/_bundled"
TIMEOUT = 240


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def copied_from_context() -> list[str]:
    """The sources of every COPY that reads the build context (not --from another stage)."""
    sources = []
    for instruction, arguments in instructions():
        if instruction != "COPY":
            continue
        words = shlex.split(arguments)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def cmd() -> list[str]:
    [arguments] = [arguments for instruction, arguments in instructions() if instruction == "CMD"]
    return json.loads(arguments)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points at the checkout or a warehouse."""
    environment = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("ELT_", "DAGSTER_")) and name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    environment.update(extra)
    return environment


def run(command: list[str], cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIMEOUT)


def output(completed: subprocess.CompletedProcess) -> str:
    return completed.stdout[-3000:] + completed.stderr[-3000:]


def files_under(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@dataclass
class Installed:
    wheel: Path
    python: Path  # the fresh environment's interpreter
    bin: Path
    site: Path  # its site-packages, where elt_assets is installed
    server: subprocess.Popen  # the Dockerfile's CMD, run from the installed package
    port: int
    server_log: Path


def instance(folder: Path) -> Path:
    """A Dagster home of its own (SQLite storage), for commands other than the quick start."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("package")
    # The build context: exactly what the Dockerfile copies, plus the tests, to show that
    # they stay out of the wheel. Building in a copy leaves the checkout's build/ and
    # egg-info alone. With build isolation, as `pip install .` and the image's build do:
    # pip installs the build backend pyproject.toml names, not the project's dependencies.
    source = root / "source"
    for name in {*copied_from_context(), "elt_assets_tests"}:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copyfile(ROOT / name, source / name)
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(root / "dist"), str(source)],
        root, dict(os.environ),
    )
    assert built.returncode == 0, output(built)
    [wheel] = (root / "dist").glob("elt_assets-*.whl")

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=TIMEOUT)
    python = venv / "bin" / "python"
    # This environment's pip, installing into the fresh one (whose python the scripts run).
    completed = run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        root, clean_environment(),
    )
    assert completed.returncode == 0, output(completed)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    root, clean_environment()).stdout.strip())
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "zz_elt_test_dependencies.pth").write_text("\n".join(dependencies) + "\n", encoding="utf-8")

    # The Dockerfile's CMD on loopback and a free port instead of 0.0.0.0:4000, started now
    # so that it has loaded the code location by the time the last test asks it.
    port = free_port()
    served = cmd()
    served[served.index("-h") + 1] = "127.0.0.1"
    served[served.index("-p") + 1] = str(port)
    app = root / "app"
    app.mkdir()
    server_log = root / "code-server.log"
    with server_log.open("w") as log:
        server = subprocess.Popen(
            [str(python), "-m", *served], cwd=app, stdout=log, stderr=subprocess.STDOUT,
            env=clean_environment(DAGSTER_HOME=str(instance(root / "server_home"))),
        )
    try:
        yield Installed(wheel, python, venv / "bin", site, server, port, server_log)
    finally:
        stop_process(server, timeout=30)


def test_the_wheel_carries_the_sql_the_sample_and_the_instance_file_but_not_the_tests(installed):
    with zipfile.ZipFile(installed.wheel) as archive:
        names = set(archive.namelist())
        for folder in ("sql", "seeds"):
            expected = files_under(ROOT / folder)
            assert expected, folder
            for name in expected:
                assert archive.read(f"{BUNDLED}/{folder}/{name}") == (ROOT / folder / name).read_bytes(), name
        assert archive.read(f"{BUNDLED}/dagster.yaml") == (ROOT / "dagster.yaml").read_bytes()
        top_level = next(name for name in names if name.endswith(".dist-info/top_level.txt"))
        assert archive.read(top_level).decode().split() == ["elt_assets"]
    assert f"{BUNDLED}/sql/raw_data/_models.yml" in names
    assert f"{BUNDLED}/seeds/landing/user_event/2023-06-14.csv" in names
    assert not [name for name in names if name.startswith("elt_assets_tests/")]
    assert not [name for name in names if name.startswith(("sql/", "seeds/"))]


def test_the_installed_copy_is_imported_and_reads_its_bundled_files(installed, tmp_path):
    probe = (
        "import json, elt_assets, elt_assets.settings as s\n"
        "print(json.dumps({'file': elt_assets.__file__, 'sql': str(s.SQL_DIR), 'seeds': str(s.SEEDS_LANDING_DIR),\n"
        "    'checkout': s.SOURCE_CHECKOUT, 'landing': s.landing_dir(), 'cache': str(s.cache_dir()),\n"
        "    'warehouse': s.default_warehouse_url(), 'instance': str(s.INSTANCE_YAML)}))\n"
    )
    completed = run([str(installed.python), "-c", probe], tmp_path, clean_environment())
    assert completed.returncode == 0, output(completed)
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    package = installed.site / "elt_assets"
    assert Path(found["file"]) == package / "__init__.py"
    assert not Path(found["file"]).is_relative_to(ROOT)
    assert found["checkout"] is False
    assert Path(found["sql"]) == package / "_bundled" / "sql"
    assert (Path(found["sql"]) / "raw_data" / "_models.yml").is_file()
    assert Path(found["seeds"]) == package / "_bundled" / "seeds" / "landing"
    assert Path(found["instance"]) == package / "_bundled" / "dagster.yaml"
    # What an installed package writes by default goes in the working directory.
    assert Path(found["landing"]) == tmp_path / "data" / "landing"
    assert Path(found["cache"]) == tmp_path / ".elt_cache"
    assert found["warehouse"] == f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"

    missing = run([str(installed.python), "-c", "import elt_assets_tests"], tmp_path, clean_environment())
    assert "No module named 'elt_assets_tests'" in missing.stderr


def test_quickstart_runs_in_an_empty_folder_and_writes_only_there(installed, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    before = files_under(installed.site)
    # No DAGSTER_HOME, no ELT_* variable: every default, as a new user would run it.
    completed = run([str(installed.bin / "elt-assets"), "quickstart"], work, clean_environment())
    assert completed.returncode == 0, output(completed)
    assert "| control |" in completed.stdout and "| test |" in completed.stdout
    assert (work / "data" / "warehouse.duckdb").is_file()
    # The sample's files, under whichever days the quick start puts them on.
    landed = files_under(work / "data" / "landing")
    assert len(landed) == len(files_under(installed.site / BUNDLED / "seeds" / "landing")), sorted(landed)
    assert (work / ".dagster_home" / "dagster.yaml").is_file()
    assert files_under(installed.site) == before


def test_one_day_materializes_from_the_installed_package(installed, tmp_path):
    work = tmp_path / "work"
    # What `elt-assets seed` does (the quick start runs it), into the default landing zone.
    shutil.copytree(installed.site / BUNDLED / "seeds" / "landing", work / "data" / "landing")
    # The first day: on an empty warehouse a later day alone is refused (the dimensions are
    # built from every earlier day; see elt_assets/models/build_log.py).
    completed = run(
        [str(installed.python), "-m", "dagster", "asset", "materialize", "-m", "elt_assets.definitions",
         "--select", "*", "--partition", "2023-06-01"],
        work, clean_environment(DAGSTER_HOME=str(instance(tmp_path / "home"))),
    )
    assert completed.returncode == 0, output(completed)
    with duckdb.connect(str(work / "data" / "warehouse.duckdb"), read_only=True) as connection:
        days = connection.execute(
            "select distinct cast(datestamp as date) from analytics.analytics_variant_user_daily"
        ).fetchall()
    assert [str(day) for (day,) in days] == ["2023-06-01"]
    assert (work / ".elt_cache").is_dir()


def test_the_dockerfile_copies_what_exists_and_serves_the_code_location(installed, tmp_path):
    steps = instructions()
    images = [arguments.split()[0] for instruction, arguments in steps if instruction == "FROM"]
    assert images and all(image == "python:3.11-slim" for image in images)
    ignored = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    for name in copied_from_context():
        assert (ROOT / name).exists(), name
        assert not [pattern for pattern in ignored if fnmatch(name, pattern)], name
    for pattern in (".venv", "data", ".dagster_home", "test-artifacts", "bench/results", ".elt_cache"):
        assert pattern in ignored, pattern
    settings = " ".join(arguments for instruction, arguments in steps if instruction in ("ENV", "ARG"))
    assert "DAGSTER_HOME=" in settings
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY|_URL)\w*=", settings)
    [user] = [arguments for instruction, arguments in steps if instruction == "USER"]
    assert user not in ("root", "0")
    command = cmd()
    assert command[:3] == ["dagster", "code-server", "start"]
    assert command[command.index("-h") + 1] == "0.0.0.0"
    assert command[command.index("-p") + 1] == "4000"
    assert command[command.index("-m") + 1] == "elt_assets.definitions"
    assert ("EXPOSE", "4000") in steps

    # The webserver's and the daemon's side: a workspace.yaml with a grpc_server entry,
    # read by `dagster definitions validate` from this environment, as docs/running.md shows.
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {installed.port}\n"
        "      location_name: elt_assets\n",
        encoding="utf-8",
    )
    environment = clean_environment(DAGSTER_HOME=str(instance(tmp_path / "home")))
    deadline = time.monotonic() + 120
    while True:
        validated = run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(workspace)],
                        tmp_path, environment)
        if validated.returncode == 0 or installed.server.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(1)
    log = installed.server_log.read_text()
    assert validated.returncode == 0, output(validated) + log[-3000:]
    assert "Validation successful for code location elt_assets" in validated.stdout + validated.stderr
    assert installed.server.poll() is None, log[-3000:]
