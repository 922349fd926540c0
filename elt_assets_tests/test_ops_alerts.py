"""The failed-run sensor: logs by default, POSTs to a webhook on 127.0.0.1 when configured."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from elt_assets.ops.alerts import AlertError, report_failed_runs
from elt_assets_tests.support import run_elt

TOKEN_PATH = "/hooks/T0KEN-9f8e7d"


@pytest.fixture
def webhook():
    """A tiny HTTP server on 127.0.0.1 that records POSTed JSON; answers `status` (default 200)."""
    received: list[dict] = []
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)})
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{TOKEN_PATH}", received, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def failed_run_context(landing, duckdb_url):
    """The sensor context for a real failed run: a day with no landed events."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_elt(landing, duckdb_url, "2023-06-20", selection="key:raw_data/user_event",
                         instance=instance, raise_on_error=False)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="report_failed_runs",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        yield context, result.run_id


def test_a_failed_run_is_posted_to_the_webhook(failed_run_context, webhook, monkeypatch):
    context, run_id = failed_run_context
    url, received, _ = webhook
    monkeypatch.setenv("ELT_ALERT_WEBHOOK_URL", url)
    report_failed_runs(context)
    assert len(received) == 1
    alert = received[0]
    assert alert["path"] == TOKEN_PATH and alert["type"] == "application/json"
    assert alert["json"]["run_id"] == run_id
    assert alert["json"]["job_name"] == "test_elt"
    assert alert["json"]["partitions"] == "2023-06-20..2023-06-20"
    assert alert["json"]["status"] == "FAILURE"
    assert alert["json"]["text"].startswith(f"Dagster run {run_id} of job test_elt failed (partitions 2023-06-20..2023-06-20)")


def test_without_a_webhook_the_failure_is_only_logged(failed_run_context, webhook, monkeypatch):
    context, _ = failed_run_context
    _, received, _ = webhook
    monkeypatch.delenv("ELT_ALERT_WEBHOOK_URL", raising=False)
    report_failed_runs(context)
    assert received == []


def test_a_refusing_webhook_fails_the_tick_without_showing_its_token(failed_run_context, webhook, monkeypatch):
    context, _ = failed_run_context
    url, received, state = webhook
    state["status"] = 500
    monkeypatch.setenv("ELT_ALERT_WEBHOOK_URL", url)
    with pytest.raises(AlertError) as raised:
        report_failed_runs(context)
    assert str(raised.value) == "alert webhook on 127.0.0.1 answered HTTP 500"
    assert "T0KEN" not in str(raised.value)
    assert len(received) == 1
