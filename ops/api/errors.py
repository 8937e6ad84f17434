"""Every refusal of the API is JSON with a sentence: ``{"detail": "..."}``; a 400 also has
``errors``, each bad field (dotted for nested ones: ``params.batch``) with its messages."""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD = "non_field_errors"


def flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.b": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = prefix if key == NON_FIELD and prefix else (f"{prefix}.{key}" if prefix else str(key))
            for k, v in flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for item in detail:
            if isinstance(item, (dict, list)):
                for k, v in flatten(item, prefix).items():
                    out.setdefault(k, []).extend(v)
            else:
                out.setdefault(prefix or NON_FIELD, []).append(str(item))
    else:
        out.setdefault(prefix or NON_FIELD, []).append(str(detail))
    return out


def summary(errors: dict[str, list[str]]) -> str:
    parts = [("; ".join(msgs) if key == NON_FIELD else f"{key}: {'; '.join(msgs)}") for key, msgs in errors.items()]
    return "Refused, nothing was changed: " + " | ".join(parts)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Another run is acting on the same things."
    default_code = "conflict"


def exception_handler(exc, context):
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten(exc.detail)
        response.data = {"detail": summary(errors), "errors": errors}
    elif not (isinstance(response.data, dict) and "detail" in response.data):
        response.data = {"detail": str(response.data)}
    return response
