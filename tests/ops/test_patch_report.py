"""A patch run's report (ops/patching/report.py) as the operator reads it on the page, in the CSV and
through the API, after real runs through pypsrp against the simulator (demo fabric, 100x faster)."""
import csv
import io

import pytest
from django.urls import reverse

from ops.models import Run
from ops.services import runs as run_service

from ._engine_support import driver  # noqa: F401 - fixture
from .test_patch_cluster import CONFIRM, patching, run_with_a_failed_install, start  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def report_json(client, run):
    r = client.get(f"/api/v1/runs/{run.pk}/report/")
    assert r.status_code == 200, r.content
    return {n["node"]: n for n in r.json()["nodes"]}, r.json()


def csv_rows(client, run):
    r = client.get(reverse("ops:run_report_csv", args=[run.pk]))
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.content.decode())))


def test_a_finished_patch_run_reports_each_node_its_updates_and_its_saved_vms(patching, operator, driver, client_for):
    run = start(operator, confirm=CONFIRM)
    client = client_for(operator)
    nodes, whole = report_json(client, run)
    assert whole["final"] is False and all(n["result"] == "InProgress" for n in nodes.values())
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    nodes, whole = report_json(client, run)
    assert whole["final"] is True and whole["cluster"] == "CLU-B"
    assert {n: v["result"] for n, v in nodes.items()} == {"hv-b01": "Succeeded", "hv-b02": "Succeeded",
                                                          "hv-b03": "Succeeded"}
    b01 = nodes["hv-b01"]
    assert b01["updates"] and all(u["result"] == "Succeeded" and u["result_code"] == "0x00000000" for u in b01["updates"])
    assert "KB5048661" in {u["article_id"] for u in b01["updates"]}
    assert sorted(b01["moved"]) == sorted(b01["returned"]) and "web02" in b01["moved"] and b01["not_home"] == []
    assert [v["name"] for v in b01["saved"]] == ["web06"] and b01["saved"][0]["down_s"] > 0
    assert b01["reboot_s"] > 0 and b01["maintenance"] == ""
    page = client.get(reverse("ops:run_report", args=[run.pk])).content.decode()
    assert page.count('data-result="Succeeded"') == 3 and "web06: down" in page and "KB5048661" in page
    rows = csv_rows(client, run)
    assert {r["node"] for r in rows} == {"hv-b01", "hv-b02", "hv-b03"}
    web06 = next(r for r in rows if r["saved_vm"] == "web06")
    assert web06["node"] == "hv-b01" and float(web06["saved_vm_down_s"]) > 0
    assert all(r["node_result"] == "Succeeded" for r in rows)
    assert "Report" in client.get(reverse("ops:run", args=[run.pk])).content.decode()


def test_a_failed_install_skipped_by_the_operator_shows_its_error_code(patching, operator, driver, client_for):
    run = run_with_a_failed_install(patching, operator, driver)
    assert run.state == Run.State.WAITING, run.message
    patching.control({"op": "clear_faults"})
    run_service.skip_block(operator, run)
    driver.drive(rests=True, timeout=300)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    nodes, _ = report_json(client_for(operator), run)
    b01 = nodes["hv-b01"]
    assert b01["result"] == "Canceled" and "skipped by the operator" in b01["reason"]
    failed = {u["article_id"]: u for u in b01["updates"]}["KB5048661"]
    assert failed["result"] == "Failed" and failed["result_code"] == "0x80070005"
    assert b01["not_home"] == [] and b01["maintenance"] == ""
    assert nodes["hv-b02"]["result"] == nodes["hv-b03"]["result"] == "Succeeded"
    rows = csv_rows(client_for(operator), run)
    assert any(r["update"] == "KB5048661" and r["result_code"] == "0x80070005" and r["node"] == "hv-b01" for r in rows)


def test_a_run_that_is_not_a_patch_run_has_no_report(patching, operator, client_for):
    run = run_service.start_run(operator, "batch-checkpoint", {"batch": "1"})
    client = client_for(operator)
    assert client.get(reverse("ops:run_report", args=[run.pk])).status_code == 404
    r = client.get(f"/api/v1/runs/{run.pk}/report/")
    assert r.status_code == 404 and "only patch runs have a report" in r.json()["detail"]


def test_the_api_starts_a_patch_run_only_with_the_warned_vms_confirmed(patching, operator, client_for):
    client = client_for(operator)
    r = client.post("/api/v1/runs/", {"runbook": "patch-cluster", "params": {"cluster": "CLU-B"}},
                    content_type="application/json")
    assert r.status_code == 400 and "web06" in str(r.json()) and "confirm" in str(r.json())
    assert Run.objects.count() == 0
    r = client.post("/api/v1/runs/", {"runbook": "patch-cluster", "params": {"cluster": "CLU-B", "confirm": CONFIRM}},
                    content_type="application/json")
    assert r.status_code == 202, r.content
    assert Run.objects.get(pk=r.json()["run"]).kind == "patch-cluster"
