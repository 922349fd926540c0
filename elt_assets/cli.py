"""The `elt-assets` command: sample data, the quick start, summaries, data generation, operations."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import yaml


from elt_assets.landing import generator
from elt_assets.models.compile import compile_models
from elt_assets.models.registry import registry
from elt_assets.settings import (
    PROJECT_ROOT,
    SAMPLE_FIRST_DAY,
    SAMPLE_LAST_DAY,
    SEEDS_LANDING_DIR,
    landing_dir,
)
from elt_assets.engines import WarehouseError, engine_for_url
from elt_assets.models.metadata import markdown_table
from elt_assets.ops.commands import add_operations_commands
from elt_assets.secrets import SecretError, warehouse_url_from_env

LOCAL_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
# The embedded default instance: SQLite storage under DAGSTER_HOME, runs queued so that
# only one writes the DuckDB file at a time, no telemetry.


def local_instance_yaml() -> str:
    """The embedded default instance (SQLite storage under DAGSTER_HOME): the production
    instance's run queue, so that one run at a time writes the warehouse, and no telemetry."""
    production = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    return yaml.safe_dump({"run_queue": production["run_queue"], "telemetry": {"enabled": False}}, sort_keys=False)


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


def seed_landing(target: Path, overwrite: bool = False) -> int:
    """Copy the shipped sample landing files into the landing zone; returns files copied."""
    copied = 0
    for source in sorted(SEEDS_LANDING_DIR.rglob("*")):
        if not source.is_file():
            continue
        destination = target / source.relative_to(SEEDS_LANDING_DIR)
        if destination.exists() and not overwrite:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
        copied += 1
    return copied


def ensure_local_instance(home: Path) -> None:
    """Create the embedded default Dagster home (SQLite storage) if it does not exist."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(local_instance_yaml(), encoding="utf-8")


def variant_summary(warehouse_url: str, first_day: date, end_day: date) -> str:
    """A markdown table of impressions, clicks, CTR, purchases and revenue per variant."""
    engine = engine_for_url(warehouse_url)
    with engine.transaction(read_only=True) as session:
        result = session.execute(
            SUMMARY_SQL, {"window_start": first_day, "window_end": end_day}
        )
        return markdown_table(list(result.keys()), [tuple(row) for row in result])


def _quickstart(args: argparse.Namespace) -> int:
    landing = Path(landing_dir())
    copied = seed_landing(landing)
    print(f"sample data: {copied} new file(s) copied into {landing}")
    environment = dict(os.environ)
    home = Path(environment.setdefault("DAGSTER_HOME", str(LOCAL_DAGSTER_HOME)))
    ensure_local_instance(home)
    environment.setdefault("DAGSTER_MODULE_NAME", "elt_assets.definitions")
    first, last = args.first_day, args.last_day
    command = [
        sys.executable, "-m", "dagster", "asset", "materialize",
        "--select", "*",
        "--partition-range", f"{first.isoformat()}...{last.isoformat()}",
    ]
    print(f"materializing every asset for {first}..{last} (DAGSTER_HOME={home})")
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        print("the run failed; the output above says where", file=sys.stderr)
        return completed.returncode
    url = warehouse_url_from_env()
    end = last + timedelta(days=1)
    print(f"\nper-variant summary, {first}..{last}:\n")
    print(variant_summary(url, first, end))
    print(
        "\nopen the UI (runs above are listed there):\n"
        f"  DAGSTER_HOME={home} .venv/bin/dagster dev -h 127.0.0.1 -p 3000\n"
        "  then browse http://127.0.0.1:3000"
    )
    return 0


def _seed(args: argparse.Namespace) -> int:
    target = Path(args.landing or landing_dir())
    print(f"{seed_landing(target, overwrite=args.overwrite)} file(s) copied into {target}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    url = warehouse_url_from_env()
    end = args.last_day + timedelta(days=1)
    print(variant_summary(url, args.first_day, end))
    return 0


def _window(args: argparse.Namespace) -> tuple[date, date]:
    """The [first, end) days of --partition DAY or --partition-range FIRST...LAST."""
    if args.partition:
        first = last = date.fromisoformat(args.partition)
    else:
        first_text, separator, last_text = args.partition_range.partition("...")
        if not separator:
            raise ValueError(f"--partition-range takes FIRST...LAST, not {args.partition_range!r}")
        first, last = date.fromisoformat(first_text), date.fromisoformat(last_text)
    if last < first:
        raise ValueError(f"the range {first}...{last} ends before it starts")
    return first, last + timedelta(days=1)


def _compile(args: argparse.Namespace) -> int:
    try:
        first, end = _window(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    url = warehouse_url_from_env()
    try:
        compiled = compile_models(url, registry(), args.models or None, first, end, landing_dir())
    except (KeyError, ValueError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    if args.out is None:
        print("\n".join(text for _model, text in compiled), end="")
        return 0
    for model, text in compiled:
        path = Path(args.out) / model.schema / f"{model.name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elt-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    quickstart = commands.add_parser(
        "quickstart", help="load the sample data, build every asset for every sample day, summarize"
    )
    quickstart.add_argument("--first-day", type=date.fromisoformat, default=SAMPLE_FIRST_DAY)
    quickstart.add_argument("--last-day", type=date.fromisoformat, default=SAMPLE_LAST_DAY)
    quickstart.set_defaults(handler=_quickstart)

    seed = commands.add_parser("seed", help="copy the shipped sample landing files into the landing zone")
    seed.add_argument("--landing", help="landing zone root (default: ELT_LANDING_DIR or data/landing)")
    seed.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    seed.set_defaults(handler=_seed)

    summary = commands.add_parser("summary", help="print the per-variant summary of a date range")
    summary.add_argument("--first-day", type=date.fromisoformat, default=SAMPLE_FIRST_DAY)
    summary.add_argument("--last-day", type=date.fromisoformat, default=SAMPLE_LAST_DAY)
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
    window.add_argument("--partition", help="one day, YYYY-MM-DD")
    window.add_argument("--partition-range", help="FIRST...LAST, both days included")
    compile_.add_argument("--out", help="write <out>/<schema>/<model>.sql instead of printing")
    compile_.set_defaults(handler=_compile)

    generate = commands.add_parser(
        "generate", help="write synthetic landing files at any scale", add_help=False
    )
    generate.set_defaults(handler=None)

    spark = commands.add_parser(
        "spark-server", help="start, stop or show a local Spark Connect server kept in a folder", add_help=False
    )
    spark.set_defaults(handler=None)

    add_operations_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:
        return generator.main(argv[1:])
    if argv[:1] == ["spark-server"]:
        from elt_assets.engines import spark_server

        return spark_server.main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (WarehouseError, SecretError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
