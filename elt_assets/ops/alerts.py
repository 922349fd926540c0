"""Failed-run alerts: logged always, POSTed to a webhook when ELT_ALERT_WEBHOOK_URL is set.

The webhook URL itself is treated as a secret (chat webhooks carry their token in the
path): only its host is ever logged.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import dagster as dg

from elt_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from elt_assets import settings

WEBHOOK_ENV = "ELT_ALERT_WEBHOOK_URL"
WEBHOOK_TIMEOUT_SECONDS = 10


class AlertError(RuntimeError):
    """The webhook did not accept the alert."""


def failure_alert(run: dg.DagsterRun, message: str) -> dict:
    """The alert document: which run, which job, which partitions, what went wrong."""
    tags = run.tags
    partitions = tags.get("dagster/partition") or (
        f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
        if RANGE_START_TAG in tags else None
    )
    summary = f"Dagster run {run.run_id} of job {run.job_name} failed"
    if partitions:
        summary += f" (partitions {partitions})"
    return {
        "text": f"{summary}: {message}",
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partitions": partitions,
        "status": run.status.value,
        "message": message,
        "reported_at": datetime.now(timezone.utc).isoformat(),
    }


def post_alert(url: str, alert: dict) -> int:
    """POST the alert as JSON; returns the HTTP status, raises AlertError on failure."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise AlertError(f"{WEBHOOK_ENV} must be an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(alert).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as error:
        raise AlertError(f"alert webhook on {parsed.hostname} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise AlertError(f"alert webhook on {parsed.hostname} unreachable: {reason}") from None


@dg.run_failure_sensor(
    name="report_failed_runs",
    description="Log every failed run of this code location; POST it to ELT_ALERT_WEBHOOK_URL if set.",
    # Alerting that is off by default alerts no one; logging costs nothing.
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_failed_runs(context: dg.RunFailureSensorContext) -> None:
    alert = failure_alert(context.dagster_run, context.failure_event.message or "no message")
    context.log.error(alert["text"])
    url = settings.alert_webhook_url()
    if url:
        status = post_alert(url, alert)
        context.log.info(f"alert for run {alert['run_id']} delivered (HTTP {status})")
