"""`elt-assets` subcommands for operators: health, cleanup, backup, restore, with-secrets.

Each opens the instance in DAGSTER_HOME (after filling DAGSTER_PG_* from Secrets Manager
when ELT_DAGSTER_PG_SECRET_ID is set) and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from elt_assets.ops.backup import SSE_CHOICES, back_up_instance
from elt_assets.ops.cleanup import clean_up_instance
from elt_assets.ops.dead_runs import DEFAULT_SILENT_AFTER_SECONDS
from elt_assets.ops.health import health_document, run_health_checks
from elt_assets.ops.instance_storage import InstanceStorageError
from elt_assets.ops.restore import RestoreError, restore_backup
from elt_assets.secrets import SecretError, apply_instance_secret, warehouse_url_from_env
from elt_assets.engines import engine_for_url

HEALTH_LOCK_TIMEOUT_SECONDS = 10.0


def add_operations_commands(commands: argparse._SubParsersAction) -> None:
    """Register the operators' subcommands on the elt-assets parser."""
    health = commands.add_parser(
        "health", help="check storage, daemons, unfinished runs, code location, warehouse, freshness"
    )
    health.add_argument("--json", action="store_true", help="print a JSON document for a monitoring tool")
    health.add_argument("--now", type=_utc_datetime, help="judge freshness as of this UTC time (ISO 8601)")
    health.add_argument("--freshness-lag-hours", type=float, help="default: ELT_FRESHNESS_LAG_HOURS or 36")
    health.add_argument("--heartbeat-max-age", type=float, help="seconds; default 120")
    health.add_argument("--module", help="the code location's module (default: elt_assets.definitions)")
    health.add_argument("--silent-run-hours", type=float, default=DEFAULT_SILENT_AFTER_SECONDS / 3600,
                        help="fail on a run whose process cannot be checked here after this long without an event "
                             "(default 6)")
    health.set_defaults(handler=_health)

    cleanup = commands.add_parser(
        "cleanup",
        help="mark runs whose process died failed; delete old runs with their event and compute logs "
             "(dagster-daemon purges ticks)",
    )
    cleanup.add_argument("--days", type=int, default=30, help="keep runs younger than this (default 30)")
    cleanup.add_argument("--dry-run", action="store_true", help="report what would go, delete nothing")
    cleanup.add_argument("--batch-size", type=int, default=100)
    cleanup.add_argument("--silent-run-hours", type=float, default=DEFAULT_SILENT_AFTER_SECONDS / 3600,
                         help="mark failed a run whose process cannot be checked here after this long without an "
                              "event (default 6)")
    cleanup.set_defaults(handler=_cleanup)

    backup = commands.add_parser("backup", help="back up the instance's storage, compute logs and config")
    backup.add_argument("--destination", help="folder or s3://bucket/prefix (default: DAGSTER_HOME/backups)")
    backup.add_argument("--keep", type=int, default=7, help="newest backups to keep (default 7)")
    backup.add_argument("--sse", choices=[choice or "none" for choice in SSE_CHOICES], default="AES256",
                        help="S3 server-side encryption (default AES256)")
    backup.add_argument("--kms-key-id", help="KMS key for --sse aws:kms")
    backup.set_defaults(handler=_backup)

    restore = commands.add_parser("restore", help="restore a backup into the (empty) instance")
    restore.add_argument("backup", help="a backup folder or s3://bucket/prefix/dagster-backup-...")
    restore.add_argument("--force", action="store_true", help="replace a non-empty instance's storage")
    restore.set_defaults(handler=_restore)

    with_secrets = commands.add_parser(
        "with-secrets", help="run a command with DAGSTER_PG_* filled from Secrets Manager"
    )
    with_secrets.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")
    with_secrets.set_defaults(handler=_with_secrets)


def _utc_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _instance() -> dg.DagsterInstance:
    if not os.environ.get("DAGSTER_HOME"):
        raise InstanceStorageError("DAGSTER_HOME is not set: point it at the instance's folder")
    apply_instance_secret(os.environ)
    return dg.DagsterInstance.get()


def _guard(handler):
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (InstanceStorageError, RestoreError, SecretError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return run


@_guard
def _health(args: argparse.Namespace) -> int:
    try:
        instance = _instance()
    except Exception as error:  # an unreachable instance is a failed check, not a traceback
        document = {"ok": False, "checked_at": datetime.now(timezone.utc).isoformat(),
                    "checks": [{"name": "instance storage", "ok": False, "detail": str(error).splitlines()[0]}]}
        print(json.dumps(document, indent=2) if args.json else f"FAIL instance storage: {document['checks'][0]['detail']}")
        return 1
    with instance:
        results = run_health_checks(
            instance,
            lambda: engine_for_url(warehouse_url_from_env(), lock_timeout_seconds=HEALTH_LOCK_TIMEOUT_SECONDS),
            now=args.now,
            lag_hours=args.freshness_lag_hours,
            heartbeat_max_age=args.heartbeat_max_age,
            module_name=args.module,
            silent_after=args.silent_run_hours * 3600,
        )
    if args.json:
        print(json.dumps(health_document(results), indent=2))
    else:
        for result in results:
            print(result.line())
    return 0 if all(result.ok for result in results) else 1


@_guard
def _cleanup(args: argparse.Namespace) -> int:
    with _instance() as instance:
        clean_up_instance(
            instance, max_age_days=args.days, dry_run=args.dry_run, batch_size=args.batch_size, log=print,
            silent_after=args.silent_run_hours * 3600,
        )
    return 0


@_guard
def _backup(args: argparse.Namespace) -> int:
    with _instance() as instance:
        result = back_up_instance(
            instance, destination=args.destination, keep=args.keep,
            server_side_encryption="" if args.sse == "none" else args.sse, kms_key_id=args.kms_key_id,
        )
    files, logs = result.manifest["files"], result.manifest["compute_logs"]
    print(f"backup of {result.manifest['storage']} storage written to {result.location}: "
          f"{len(files)} file(s), {sum(item['bytes'] for item in files)} bytes")
    print(f"compute logs: {logs['files']} file(s) included" if logs["included"] else
          f"compute logs: not included ({logs['reason']})")
    for name in result.removed:
        print(f"removed old backup {name}")
    return 0


@_guard
def _restore(args: argparse.Namespace) -> int:
    if not os.environ.get("DAGSTER_HOME"):
        raise InstanceStorageError("DAGSTER_HOME is not set: point it at the instance to restore into")
    apply_instance_secret(os.environ)
    manifest = restore_backup(args.backup, Path(os.environ["DAGSTER_HOME"]), force=args.force)
    print(f"restored {manifest['name']} ({manifest['storage']} storage, made {manifest['created_at']})")
    return 0


@_guard
def _with_secrets(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ValueError("usage: elt-assets with-secrets -- COMMAND [ARGS...]")
    apply_instance_secret(os.environ)
    # Replace this process: signals and the exit code belong to the command itself.
    os.execvp(argv[0], argv)
    return 127  # not reached
