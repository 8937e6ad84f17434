"""Logging filters."""
import logging


class RefusalsInOneLine(logging.Filter):
    """Django logs a refused request (403, 404, 400) with the exception's traceback: for a
    PermissionDenied or Http404 that is noise, the request line says it all. Server errors
    (5xx) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500 and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True
