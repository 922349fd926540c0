"""The `elt-assets` command: sample data, the quick start, summaries, data generation, operations."""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import subprocess
import sys
from collections import deque
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

# Only light modules at the top: dagster, duckdb, sqlalchemy, pandas and the model registry
# are imported by the command that needs them, so that `--help` and a mistyped argument
# answer at once instead of after seconds of imports.
from elt_assets.settings import (
    INSTANCE_YAML,
    PROJECT_ROOT,
    SAMPLE_FIRST_DAY,
    SAMPLE_LAST_DAY,
    SEEDS_LANDING_DIR,
    SOURCE_CHECKOUT,
    landing_dir,
    start_date,
    start_date_setting,
    workspace_root,
)

SAMPLE_DAYS = (SAMPLE_LAST_DAY - SAMPLE_FIRST_DAY).days + 1

# The operators' subcommands come from elt_assets.ops.commands, which imports dagster; it is
# imported only when one of them is run. Their one-line helps, for `elt-assets --help`
# (test_cli checks that they match the ones the module registers):
OPERATIONS_COMMANDS = {
    "health": "check storage, daemons, unfinished runs, code location, warehouse, freshness",
    "cleanup": "mark runs whose process died failed; delete old runs with their event and compute logs "
               "(dagster-daemon purges ticks)",
    "backup": "back up the instance's storage, compute logs and config",
    "restore": "restore a backup into the (empty) instance",
    "with-secrets": "run a command with DAGSTER_PG_* filled from Secrets Manager",
}


def local_instance_yaml() -> str:
    """The embedded default instance (SQLite storage under DAGSTER_HOME): the production
    instance's run queue, so that one run at a time writes the warehouse, its run
    monitoring and managed loggers, and no telemetry.

    Dagster's consolidated SQLite event log (every run's events in one database, each
    event written once) was measured and not taken: a one-day run of the no-op twin of the
    asset graph took a median 4.7 s against 5.3 s, but Dagster meant it for tests, and its
    base_dir must be an absolute path, which ties the configuration to one folder: a
    backup restored into another DAGSTER_HOME would point at the old one.
    """
    import yaml

    production = yaml.safe_load(INSTANCE_YAML.read_text(encoding="utf-8"))
    config = {key: production[key] for key in ("run_queue", "run_monitoring", "python_logs")}
    return yaml.safe_dump({**config, "telemetry": {"enabled": False}}, sort_keys=False)


SUMMARY_TABLE = ("analytics", "analytics_variant_user_daily")
SUMMARY_SQL = """
select
    coalesce(variant_id, '(unassigned)') as variant,
    count(distinct user_id) as users,
    sum(num_of_items) as impressions,
    sum(num_of_clicks) as clicks,
    round(100.0 * sum(num_of_clicks) / nullif(sum(num_of_items), 0), 2) as ctr_pct,
    sum(num_of_purchases) as purchases,
    sum(revenue) as revenue
from analytics.analytics_variant_user_daily
where datestamp >= :window_start and datestamp < :window_end
group by 1
order by 1
"""
BUILT_DAYS_SQL = "select min(datestamp), max(datestamp) from analytics.analytics_variant_user_daily"


# ---------------------------------------------------------------- the sample, on any calendar

_LEADING_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def shifted_text(text: str, offset: timedelta) -> str:
    """The text with its leading YYYY-MM-DD moved by offset; any other text as it is."""
    match = _LEADING_DATE.match(text)
    if not match or not offset:
        return text
    try:
        day = date.fromisoformat(match.group())
    except ValueError:
        return text
    return (day + offset).isoformat() + text[match.end():]


def shifted_sample_file(source: Path, offset: timedelta) -> bytes:
    """A sample CSV with every date in it (datestamp, updated_at) moved by offset."""
    if not offset:
        return source.read_bytes()
    if source.suffix != ".csv":
        raise ValueError(f"cannot move the dates of {source}: only CSV sample files can be shifted")
    rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8"), newline="")))
    output = io.StringIO(newline="")
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(rows[0])
    writer.writerows([shifted_text(value, offset) for value in row] for row in rows[1:])
    return output.getvalue().encode("utf-8")


def seed_landing(target: Path, overwrite: bool = False, first_day: date = SAMPLE_FIRST_DAY) -> int:
    """Write the shipped sample into the landing zone with its 14 days moved to start at
    first_day (file names and every date in the files); returns the files written. An
    existing file is kept, or with overwrite replaced if it differs."""
    offset = first_day - SAMPLE_FIRST_DAY
    written = 0
    for source in sorted(SEEDS_LANDING_DIR.rglob("*")):
        if not source.is_file():
            continue
        relative = source.relative_to(SEEDS_LANDING_DIR)
        destination = target.joinpath(*(shifted_text(part, offset) for part in relative.parts))
        if destination.exists() and not overwrite:
            continue
        content = shifted_sample_file(source, offset)
        if destination.exists() and destination.read_bytes() == content:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        # The landing zone ignores dot files: the sensor never sees a half-written file.
        temporary = destination.with_name(f".{destination.name}.tmp")
        temporary.write_bytes(content)
        os.replace(temporary, destination)
        written += 1
    return written


def local_dagster_home() -> Path:
    """The quick start's Dagster home when DAGSTER_HOME is not set."""
    return workspace_root() / ".dagster_home"


def project_env_file() -> Path:
    """Where the quick start records the partitions' start: the .env that `dg dev`,
    `dg launch` and `dagster dev` read when started here (its values beat the shell's)."""
    return workspace_root() / ".env"


def utc_yesterday() -> date:
    """The newest complete UTC day: the last partition that exists now."""
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def record_start_date(env_file: Path, first_day: date | None) -> None:
    """Set ELT_START_DATE in a .env file (None: remove it), keeping every other line."""
    lines = env_file.read_text(encoding="utf-8").splitlines() if env_file.exists() else []
    kept = [
        line for line in lines
        if not re.match(r"\s*(export\s+)?ELT_START_DATE\s*=", line) and line != _START_DATE_COMMENT
    ]
    if first_day is not None:
        kept += [_START_DATE_COMMENT, f"ELT_START_DATE={first_day.isoformat()}"]
    if not kept:
        env_file.unlink(missing_ok=True)
        return
    env_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = env_file.with_name(f".{env_file.name}.tmp")
    temporary.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    os.replace(temporary, env_file)


_START_DATE_COMMENT = "# The first daily partition: the first day of the sample, set by `elt-assets quickstart`."


# ---------------------------------------------------------------- the warehouse's summary


class NothingBuilt(LookupError):
    """The warehouse holds no summary rows for the days asked (the message says why)."""


def variant_summary(
    warehouse_url: str, first_day: date | None = None, last_day: date | None = None
) -> tuple[date, date, str]:
    """Impressions, clicks, CTR, purchases and revenue per variant as a markdown table, for
    first_day..last_day (missing bounds: the oldest or newest day built), with those days."""
    from elt_assets.engines import engine_for_url
    from elt_assets.models.metadata import markdown_table

    engine = engine_for_url(warehouse_url)
    if not engine.exists():
        raise NothingBuilt("the warehouse does not exist")
    name = ".".join(SUMMARY_TABLE)
    with engine.transaction(read_only=True) as session:
        if not engine.table_columns(session, *SUMMARY_TABLE):
            raise NothingBuilt(f"{name} does not exist")
        if first_day is None or last_day is None:
            oldest, newest = session.execute(BUILT_DAYS_SQL).one()
            if oldest is None:
                raise NothingBuilt(f"{name} has no rows")
            first_day, last_day = first_day or _day_of(oldest), last_day or _day_of(newest)
        result = session.execute(
            SUMMARY_SQL, {"window_start": first_day, "window_end": last_day + timedelta(days=1)}
        )
        columns, rows = list(result.keys()), [tuple(row) for row in result]
    if not rows:
        raise NothingBuilt(f"{name} has no rows for those days")
    return first_day, last_day, markdown_table(columns, rows)


def _day_of(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


# ---------------------------------------------------------------- commands


def _quickstart(args: argparse.Namespace) -> int:
    first_day = sample_first_day(args.as_shipped)
    sample_last = first_day + timedelta(days=SAMPLE_DAYS - 1)
    if sample_last > utc_yesterday():
        return _usage_error(f"ELT_START_DATE={first_day} puts the sample's last day {sample_last} "
                            f"after {utc_yesterday()}, the newest complete day")
    first, last = args.first_day or first_day, args.last_day or sample_last
    if not first_day <= first <= last <= sample_last:
        return _usage_error(f"--first-day/--last-day {first}..{last} is not within the sample's days "
                            f"{first_day}..{sample_last}")
    landing = Path(landing_dir())
    written = seed_landing(landing, overwrite=True, first_day=first_day)
    print(f"sample data: the {SAMPLE_DAYS} days {first_day}..{sample_last}, {written} file(s) written into {landing}")
    env_file = Path(args.env_file)
    record_start_date(env_file, None if first_day == SAMPLE_FIRST_DAY else first_day)
    if first_day != SAMPLE_FIRST_DAY:
        print(f"partitions start at {first_day}: ELT_START_DATE recorded in {env_file}")

    environment = dict(os.environ, ELT_START_DATE=first_day.isoformat())
    home = Path(environment.setdefault("DAGSTER_HOME", str(local_dagster_home())))
    ensure_local_instance(home)
    print(f"materializing every asset for {first}..{last} (DAGSTER_HOME={home})", flush=True)
    # `dg launch` runs in the .env's folder: the Dagster CLI reads the .env of its working
    # directory and lets it override the environment, so this is the value the run sees.
    command = [
        sys.executable, "-m", "dagster_dg_cli.cli", "launch", "-m", "elt_assets.definitions",
        "--assets", "*", "--partition-range", f"{first.isoformat()}...{last.isoformat()}",
    ]
    if SOURCE_CHECKOUT:  # a checkout need not be installed to be run: import it from where it is
        command += ["-d", str(PROJECT_ROOT)]
    returncode, failures, tail = _run_with_progress(command, env_file.parent, environment)
    if returncode != 0:
        sys.stderr.write("".join(failures) + "\nthe run's last lines:\n" + "".join(tail))
        print("the run failed; the output above says where", file=sys.stderr)
        return returncode

    print()
    if _print_summary(first, last) != 0:
        return 1
    folder = env_file.parent
    # dg finds the project through pyproject.toml, which only a checkout has beside its .env.
    servers = [f"{_tool('dg', folder)} dev", f"{_tool('dagster', folder)} dev"] if SOURCE_CHECKOUT else [
        f"{_tool('dagster', folder)} dev -m elt_assets.definitions"
    ]
    print(f"\nopen the UI from {folder}, whose .env it reads (the run above is listed there):")
    for server in servers:
        print(f"  DAGSTER_HOME={home} {server} -h 127.0.0.1 -p 3000")
    print("then browse http://127.0.0.1:3000; while it runs, `elt-assets health` checks everything")
    return 0


def _tool(name: str, folder: Path) -> str:
    """A console script of this environment, as typed in folder."""
    path = Path(sys.executable).parent / name
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def sample_first_day(as_shipped: bool) -> date:
    """Where the sample goes: its own days, an explicit ELT_START_DATE, or the 14 days ending yesterday."""
    if as_shipped:
        return SAMPLE_FIRST_DAY
    # Set at all, not its value: ELT_START_DATE=2023-06-01 pins the shipped days.
    if start_date_setting():
        return start_date()
    return utc_yesterday() - timedelta(days=SAMPLE_DAYS - 1)


# A finished step, a failed step and a check that did not pass, in the Dagster CLI's log lines.
_LOG_RECORD = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")
# Not anchored at the line's end: the CLI's stdout and stderr share the pipe, and another
# write can land on the same line.
_STEP_DONE = re.compile(r'Finished execution of step "([^"]+)" in ([0-9][0-9.]*(?:ms|s|m[0-9.]*s|m)?)')
_STEP_FAILED = re.compile(r'STEP_FAILURE - Execution of step "([^"]+)" failed')
_CHECK_FAILED = re.compile(r"ASSET_CHECK_EVALUATION - (Asset check .* did not pass.*)")


def _run_with_progress(
    command: list[str], cwd: Path, environment: dict[str, str]
) -> tuple[int, list[str], list[str]]:
    """Run a Dagster CLI command, printing a line per finished step; returns its exit code,
    each failed step's error (its log record up to the stack trace) and the output's last lines."""
    failures: list[str] = []
    tail: deque[str] = deque(maxlen=40)
    process = subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    )
    steps, in_failure = 0, False
    with process.stdout:
        for line in process.stdout:
            tail.append(line)
            if in_failure:
                in_failure = not (line.startswith("Stack Trace:") or _LOG_RECORD.match(line))
                if in_failure:
                    failures.append(line)
            if done := _STEP_DONE.search(line):
                steps += 1
                print(f"  [{steps:2}] {done.group(1).replace('__', '/')} done in {done.group(2)}", flush=True)
            elif failed := _STEP_FAILED.search(line):
                print(f"  FAILED {failed.group(1).replace('__', '/')}", flush=True)
                failures.append(line)
                in_failure = True
            elif check := _CHECK_FAILED.search(line):
                print(f"  warning: {check.group(1)[:200]}", flush=True)
    return process.wait(), failures, list(tail)


def ensure_local_instance(home: Path) -> None:
    """Create the embedded default Dagster home (SQLite storage) if it does not exist."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(local_instance_yaml(), encoding="utf-8")


def _seed(args: argparse.Namespace) -> int:
    target = Path(args.landing or landing_dir())
    print(f"{seed_landing(target, overwrite=args.overwrite)} file(s) copied into {target}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    first, last = args.first_day, args.last_day
    if first and last and last < first:
        return _usage_error(f"the range {first}..{last} is empty: --last-day is before --first-day")
    return _print_summary(first, last)


def _print_summary(first: date | None, last: date | None) -> int:
    """Print the per-variant summary of the configured warehouse; 1 when nothing is built."""
    from elt_assets.secrets import masked_url, warehouse_url_from_env

    url = warehouse_url_from_env()
    try:
        shown_first, shown_last, table = variant_summary(url, first, last)
    except NothingBuilt as reason:
        days = f" for {first or 'the oldest day'}..{last or 'the newest day'}" if first or last else ""
        print(f"error: nothing built{days} in the warehouse {masked_url(url)}: {reason}", file=sys.stderr)
        return 1
    print(f"per-variant summary, {shown_first}..{shown_last}:\n\n{table}")
    return 0


def _compile(args: argparse.Namespace) -> int:
    from elt_assets.models.compile import compile_models
    from elt_assets.models.registry import registry
    from elt_assets.secrets import warehouse_url_from_env

    first, last = (args.partition, args.partition) if args.partition else args.partition_range
    url = warehouse_url_from_env()
    try:
        compiled = compile_models(url, registry(), args.models or None, first, last + timedelta(days=1), landing_dir())
    except (KeyError, ValueError) as error:
        return _usage_error(error.args[0] if error.args else error)
    if args.out is None:
        print("\n".join(text for _model, text in compiled), end="")
        return 0
    for model, text in compiled:
        path = Path(args.out) / model.schema / f"{model.name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


def _usage_error(message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------- arguments


def day_argument(text: str) -> date:
    """A YYYY-MM-DD argument; argparse prefixes the error with the argument's name."""
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        reason = "" if str(error).startswith("Invalid isoformat") else f": {error}"
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD){reason}") from None


def day_range_argument(text: str) -> tuple[date, date]:
    """FIRST...LAST, both days included."""
    first_text, separator, last_text = text.partition("...")
    if not separator:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range FIRST...LAST (YYYY-MM-DD...YYYY-MM-DD)")
    first, last = day_argument(first_text), day_argument(last_text)
    if last < first:
        raise argparse.ArgumentTypeError(f"the range {text!r} ends before it starts")
    return first, last


def build_parser(operations: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elt-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    quickstart = commands.add_parser(
        "quickstart",
        help="load the sample as the 14 days ending yesterday, build every asset for them, summarize",
        description=(
            "Write the shipped sample into the landing zone, its days moved onto the 14 days "
            "ending yesterday (UTC), record ELT_START_DATE in .env so that partitions start "
            "there, build every asset and check for those days, and print a summary."
        ),
    )
    quickstart.add_argument("--as-shipped", action="store_true",
                            help=f"keep the sample's own days, {SAMPLE_FIRST_DAY}..{SAMPLE_LAST_DAY}")
    quickstart.add_argument("--first-day", type=day_argument, help="build from this day (default: the sample's first)")
    quickstart.add_argument("--last-day", type=day_argument, help="build up to this day (default: the sample's last)")
    quickstart.add_argument("--env-file", default=str(project_env_file()),
                            help="the .env to record ELT_START_DATE in, and to run in (default: %(default)s)")
    quickstart.set_defaults(handler=_quickstart)

    seed = commands.add_parser("seed", help="copy the shipped sample landing files into the landing zone")
    seed.add_argument("--landing", help="landing zone root (default: ELT_LANDING_DIR or data/landing)")
    seed.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    seed.set_defaults(handler=_seed)

    summary = commands.add_parser("summary", help="print the per-variant summary of a date range")
    summary.add_argument("--first-day", type=day_argument, help="YYYY-MM-DD (default: the oldest day built)")
    summary.add_argument("--last-day", type=day_argument, help="YYYY-MM-DD (default: the newest day built)")
    summary.set_defaults(handler=_summary)

    compile_ = commands.add_parser(
        "compile",
        help="print the SQL each model would run for a window, without running it",
        description=(
            "Write the statements each model's materialization would execute for the window "
            "on the configured warehouse (ELT_WAREHOUSE_URL), with the window as literals, "
            "in build order. The output runs unchanged in the warehouse."
        ),
    )
    compile_.add_argument("models", nargs="*", help="models to compile (default: all), e.g. fact_user_event")
    window = compile_.add_mutually_exclusive_group(required=True)
    window.add_argument("--partition", type=day_argument, help="one day, YYYY-MM-DD")
    window.add_argument("--partition-range", type=day_range_argument, help="FIRST...LAST, both days included")
    compile_.add_argument("--out", help="write <out>/<schema>/<model>.sql instead of printing")
    compile_.set_defaults(handler=_compile)

    # Parsed by their own modules (see main); listed here for --help.
    commands.add_parser("generate", help="write synthetic landing files at any scale", add_help=False)
    commands.add_parser(
        "spark-server", help="start, stop or show a local Spark Connect server kept in a folder", add_help=False
    )

    if operations:
        from elt_assets.ops.commands import add_operations_commands

        add_operations_commands(commands)
    else:
        for name, help_text in OPERATIONS_COMMANDS.items():
            commands.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:
        from elt_assets.landing import generator

        return generator.main(argv[1:])
    if argv[:1] == ["spark-server"]:
        from elt_assets.engines import spark_server

        return spark_server.main(argv[1:])
    try:
        args = build_parser(operations=bool(argv) and argv[0] in OPERATIONS_COMMANDS).parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a bad argument (2): a code for the caller, not an exit
        return exit_.code or 0
    try:
        return args.handler(args)
    except Exception as error:
        from elt_assets.engines import WarehouseError
        from elt_assets.secrets import SecretError

        if not isinstance(error, (WarehouseError, SecretError)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
