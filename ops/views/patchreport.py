"""A patch run's report (ops/patching/report.py) as a page and as CSV, beside the run page."""
import csv

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path

from ..authz import requires, restrict
from ..models import Run
from ..patching import report

RESULT_CLASS = {"Succeeded": "ok", "PartiallyFailed": "warn", "Failed": "bad", "Canceled": "muted",
                "InProgress": "info"}


def _patch_run(request, pk) -> Run:
    run = get_object_or_404(restrict(Run.objects.all(), request.user, "run.view"), pk=pk)
    if run.kind != "patch-cluster":
        raise Http404(f"Run {run.pk} is a {run.kind} run: only patch runs have a report.")
    return run


@requires("run.view")
def report_page(request, pk):
    run = _patch_run(request, pk)
    rep = report.build(run)
    nodes = [(n, RESULT_CLASS.get(n.result, "")) for n in rep.nodes]
    return render(request, "ops/runs/report.html", {"run": run, "report": rep, "nodes": nodes})


@requires("run.view")
def report_csv(request, pk):
    run = _patch_run(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="slipway-run-{run.pk}-report.csv"'
    writer = csv.writer(response)
    for row in report.build(run).csv_rows():
        writer.writerow(row)
    return response


urlpatterns = [
    path("runs/<int:pk>/report/", report_page, name="run_report"),
    path("runs/<int:pk>/report.csv", report_csv, name="run_report_csv"),
]
