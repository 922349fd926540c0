"""The Dagster UI in a real browser: see the lineage, launch one day, read the result.

A `dagster-webserver` on 127.0.0.1 serves this project's code location against a SQLite
instance and a DuckDB warehouse in the test's folder; headless Chromium, driven by
Playwright, clicks through it as a user would. Screenshots land in `test-artifacts/ui/`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from elt_assets.definitions import defs
from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.support import copy_sample, rows, run_elt

# CI sets this so that a missing browser fails the run instead of skipping the test.
REQUIRE_BROWSER = os.environ.get("ELT_REQUIRE_BROWSER") == "1"
# Set to copy the graph, readout and chart screenshots over the ones the docs embed.
REFRESH_DOCS = os.environ.get("ELT_REFRESH_DOCS_SCREENSHOTS") == "1"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "ui"
DOCS = PROJECT_ROOT / "docs"

# Every asset of the code location, by the name its graph node shows.
ASSETS = sorted(key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys())
# "Materialize all" covers the assets this code location builds, not the landing files.
MATERIALIZABLE = list(defs.resolve_asset_graph().materializable_asset_keys)
DAY = "2023-06-05"
# A day of the range run the fixture builds before the UI opens.
RANGE_DAY = "2023-06-02"
# The readout's table must fit a laptop's screen, not just the test's wider window.
READOUT_WIDTH = 1440

INSTANCE_YAML = """\
telemetry:
  enabled: false
# Runs launched from the UI start at once; the default queued coordinator would wait for
# a dagster-daemon, which this test does not run.
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
# No welcome dialog over the pages under test.
nux:
  enabled: false
"""

RUN_STATUS_QUERY = """
query RunStatus($runId: String!) {
  runsOrError(filter: {runIds: [$runId]}) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


def _missing_browser() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright's Python package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop_process_group(process: subprocess.Popen) -> None:
    """Stop a process and everything it started (the code server, run workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    # The group may outlive its leader: a run worker that was still finishing.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _graphql(base_url: str, query: str, variables: dict) -> dict:
    """Ask the webserver's GraphQL endpoint, as the UI does; the response's data."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def _wait_until_serving(base_url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll until the webserver answers; fail early, with its log, if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/server_info", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"dagster-webserver did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def browser_available():
    """Skip without Playwright or Chromium; fail instead when ELT_REQUIRE_BROWSER=1."""
    reason = _missing_browser()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def ui_environment(tmp_path):
    """An instance, a landing zone and a warehouse holding the sample's first four days."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    landing = copy_sample(tmp_path / "landing")
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    # The days before the one launched from the UI give the readout a history to chart,
    # as on any day after the first in production.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_elt(landing, url, "2023-06-01", "2023-06-04", instance=instance)
    return {"home": home, "landing": landing, "url": url, "log": tmp_path / "webserver.log"}


def _workspace_in(folder: Path) -> Path:
    """The project's workspace.yaml, written into `folder` with its working directories made
    absolute: Dagster resolves them from where the webserver runs."""
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    for entry in workspace["load_from"]:
        for target in entry.values():
            target["working_directory"] = str((PROJECT_ROOT / target.get("working_directory", ".")).resolve())
    path = folder / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace))
    return path


@pytest.fixture
def webserver(browser_available, ui_environment):
    """`dagster-webserver` for this project on a free loopback port; its base URL."""
    environment = dict(os.environ)
    environment.update(
        DAGSTER_HOME=str(ui_environment["home"]),
        ELT_LANDING_DIR=str(ui_environment["landing"]),
        ELT_WAREHOUSE_URL=ui_environment["url"],
    )
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = ui_environment["log"]
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(_workspace_in(log.parent))],
            # Not from the project folder: Dagster's CLI loads a .env from the working
            # directory over the environment, and `elt-assets quickstart` records
            # ELT_START_DATE in one there; the test's settings are the ones above.
            cwd=log.parent, env=environment, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_serving(base_url, process, log, timeout=60)
        yield base_url
    finally:
        _stop_process_group(process)


@pytest.fixture
def page(webserver):
    """A headless Chromium page; the last thing it showed is saved even when a step fails."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=webserver)
            page = context.new_page()
            page.set_default_timeout(20_000)
            try:
                yield page
            finally:
                # What the page showed when a step failed; best effort, never the failure itself.
                with contextlib.suppress(PlaywrightError):
                    page.screenshot(path=ARTIFACTS / "last-page.png")
        finally:
            browser.close()


def _names_asset(label: str, name: str) -> bool:
    """Whether a graph node's text names the asset.

    Zoomed out, a node shows only its name, and a long one is cut in the middle with an
    ellipsis; zoomed in, the name is followed by the node's details.
    """
    head, ellipsis, tail = label.partition("…")
    if ellipsis:
        return name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)
    return re.match(rf"{re.escape(name)}(?![a-z0-9_])", label) is not None


def _expect_graph_shows(page, names, timeout: float = 20) -> None:
    """Wait until the graph has a node for every name and has stopped moving."""
    nodes = page.locator("svg foreignObject")
    deadline = time.monotonic() + timeout
    previous_layout = None
    while True:
        labels = [text.strip() for text in nodes.all_text_contents()]
        missing = [name for name in names if not any(_names_asset(label, name) for label in labels)]
        # The graph glides to its new zoom after groups expand; a screenshot waits for it.
        layout = nodes.evaluate_all("nodes => nodes.map(node => JSON.stringify(node.getBoundingClientRect()))")
        if not missing and layout == previous_layout:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the asset graph does not show {missing} (or never settles); its nodes read {labels}")
        previous_layout = layout
        page.wait_for_timeout(250)


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    # Finish CSS transitions first, so that a dialog is not caught halfway faded in.
    page.screenshot(path=path, animations="disabled")
    return path


def test_one_day_launched_from_the_ui_lands_in_the_warehouse(page, webserver, ui_environment):
    from playwright.sync_api import expect

    url = ui_environment["url"]
    assert not rows(url, "analytics.analytics_variant_user_daily", f"where datestamp = '{DAY}'")
    navigation = page.get_by_role("navigation")

    # The lineage: every asset, its group expanded, with room for the graph.
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    # Icon-only buttons are named after their icon: the graph's gear (the navigation's is
    # "settings Settings") and the one that folds the asset tree away. Expanding the groups
    # fits the graph to the page; folding the tree afterwards keeps it whole, with room.
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="panel_show_right", exact=True).click()
    _expect_graph_shows(page, ASSETS)
    graph_shot = _shot(page, "01-asset-graph")

    # The daily partitions of the analytics table, found by name.
    navigation.get_by_text("Catalog", exact=True).click()
    page.get_by_role("link", name=re.compile(r"analytics_variant_user_daily")).click()
    expect(page).to_have_url(re.compile(r"/assets/analytics/analytics_variant_user_daily"))
    page.get_by_role("tab", name="Partitions").click()
    page.get_by_placeholder("Filter by name").fill("2023-06")
    expect(page.get_by_title(DAY, exact=True)).to_be_visible()
    expect(page.get_by_text("Materialized (4)")).to_be_visible()
    page.get_by_title("2023-06-04", exact=True).click()
    expect(page.get_by_text("dagster/row_count")).to_be_visible()
    _shot(page, "02-partitions")

    # One day of the fact, built in a range run: its page counts that day's rows alone.
    navigation.get_by_text("Catalog", exact=True).click()
    page.get_by_role("link", name=re.compile(r"fact_user_event")).click()
    expect(page).to_have_url(re.compile(r"/assets/core/fact_user_event"))
    page.get_by_role("tab", name="Partitions").click()
    page.get_by_placeholder("Filter by name").fill("2023-06")
    page.get_by_title(RANGE_DAY, exact=True).click()
    row_count = page.get_by_role("cell", name="dagster/row_count", exact=True).locator("xpath=following-sibling::td[1]")
    day_rows = len(rows(url, "core.fact_user_event", f"where cast(datestamp as date) = date '{RANGE_DAY}'"))
    window_rows = len(rows(url, "core.fact_user_event"))
    assert 0 < day_rows < window_rows
    expect(row_count).to_have_text(re.compile(rf"^\s*{day_rows:,}\s*$".replace(",", ",?")))  # 3,141 or 3141
    row_count.scroll_into_view_if_needed()
    _shot(page, "02-fact-partition")

    # Materialize all, for one day only.
    navigation.get_by_text("Lineage", exact=True).click()
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Launch runs to materialize {len(MATERIALIZABLE)} assets")).to_be_visible()
    # The dialog offers the last 90 days first; the sample's days are older than that.
    dialog.get_by_role("button", name="Show all partitions").click()
    partitions = dialog.get_by_role("textbox")
    partitions.fill(DAY)
    partitions.press("Enter")
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    _shot(page, "03-launch-dialog")
    launch.click()
    # Launching starts the run's process before the dialog closes.
    expect(dialog).to_be_hidden(timeout=30_000)

    # The run, from the runs list; wait on its page until it ends.
    navigation.get_by_text("Runs", exact=True).click()
    view = page.get_by_role("link", name="View", exact=True)
    # The list is a grid of plain boxes, not a table: the run's row is the innermost box
    # that holds both the day's partition tag and a View link.
    run_row = page.locator("div").filter(has_text=f"partition: {DAY}").filter(has=view).last
    run_row.locator(view).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = page.url.rsplit("/", 1)[-1]
    outcome = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(outcome).to_be_visible(timeout=60_000)
    # One step per asset plus the checks that run as steps of their own; none errored.
    expect(page.get_by_text(re.compile(r"^Succeeded \(\d+\)$"))).to_be_visible()
    expect(page.get_by_text("Errored (0)")).to_be_visible()
    _shot(page, "04-run-success")
    assert outcome.inner_text() == "Success"
    runs = _graphql(webserver, RUN_STATUS_QUERY, {"runId": run_id})["runsOrError"]["results"]
    assert [run["status"] for run in runs] == ["SUCCESS"]
    assert {"key": "dagster/partition", "value": DAY} in runs[0]["tags"]

    # The readout's latest materialization: its table and its chart, on a laptop's screen.
    page.set_viewport_size({"width": READOUT_WIDTH, "height": 1000})
    navigation.get_by_text("Catalog", exact=True).click()
    page.get_by_role("link", name=re.compile(r"ab_test_readout")).click()
    page.get_by_role("tab", name="Events").click()
    expect(page.get_by_text(re.compile(rf"Partition\s*{DAY}\s*materialized in run\s*{run_id[:8]}"))).to_be_visible()
    readout = page.get_by_role("row").filter(has=page.get_by_text("readout", exact=True))
    readout.evaluate("row => row.scrollIntoView({block: 'center'})")
    for metric in ("users", "ctr", "revenue per user"):
        expect(readout.get_by_role("cell", name=metric, exact=True)).to_be_visible()
    # The whole table fits: its last column, header and cells, is not cut off on the right
    # (the viewport check counts what an ancestor's overflow hides as out of view).
    last_header = readout.get_by_role("columnheader", name="flag", exact=True)
    expect(last_header).to_be_in_viewport(ratio=1)
    last_cell = readout.get_by_role("cell", name="revenue per user", exact=True).locator("xpath=../td[last()]")
    expect(last_cell).to_be_in_viewport(ratio=1)
    readout_shot = _shot(page, "05-ab-test-readout")

    chart_row = page.get_by_role("row").filter(has=page.get_by_text("daily_ctr_chart", exact=True))
    chart_row.get_by_text("Show Markdown").click()
    chart = page.get_by_role("dialog").get_by_role("img", name=f"Daily click-through rate per variant, up to {DAY}")
    expect(chart).to_be_visible()
    assert chart.evaluate("image => image.complete && image.naturalWidth > 0")
    chart_shot = _shot(page, "06-daily-ctr-chart")

    # What the run wrote, read back from the warehouse.
    daily = rows(url, "analytics.analytics_variant_user_daily", f"where datestamp = '{DAY}'")
    assert len(daily) > 100
    readout_rows = rows(url, "analytics.ab_test_readout", f"where as_of_date = '{DAY}'")
    assert {row[1] for row in readout_rows} == {"users", "impressions", "ctr", "purchase_conversion", "revenue_per_user"}

    if REFRESH_DOCS:
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(graph_shot, DOCS / "asset-graph.png")
        shutil.copyfile(readout_shot, DOCS / "ab-test-readout.png")
        shutil.copyfile(chart_shot, DOCS / "daily-ctr-chart.png")
