"""A refused request is logged in one line; a server error keeps its traceback."""
import logging

from portal.logfilters import RefusalsInOneLine


def _record(status, exc_info):
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden (Permission denied): %s",
                               ("/ops/connections/",), exc_info)
    record.status_code = status
    return record


def test_refusals_lose_their_traceback_server_errors_keep_it():
    try:
        raise PermissionError("no")
    except PermissionError:
        import sys

        info = sys.exc_info()
    refused, failed = _record(403, info), _record(500, info)
    f = RefusalsInOneLine()
    assert f.filter(refused) and f.filter(failed)
    assert refused.exc_info is None and "Traceback" not in logging.Formatter().format(refused)
    assert failed.exc_info is info and "Traceback" in logging.Formatter().format(failed)


def test_a_tenant_on_an_operator_page_is_one_log_line(client_for, tenant):
    import io

    handler = logging.getLogger("django.request").handlers[0]  # the configured console handler
    stream, handler.stream = handler.stream, io.StringIO()
    try:
        assert client_for(tenant).get("/ops/connections/").status_code == 403
        output = handler.stream.getvalue()
    finally:
        handler.stream = stream
    assert "Forbidden" in output and "/ops/connections/" in output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1
