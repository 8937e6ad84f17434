"""API tokens (``Authorization: Token <key>``, DRF's authtoken): each user creates and
revokes their own, on their profile page. The key is shown once, on creation, and never
written to the audit log or a log line."""
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from . import audit


def token_of(user) -> Token | None:
    return Token.objects.filter(user=user).first()


def create_token(user) -> Token:
    """A new token for ``user``; refused while they have one (revoke it first)."""
    with transaction.atomic():
        existing = Token.objects.select_for_update().filter(user=user).first()
        if existing is not None:
            raise ValidationError(f"You already have an API token (created {existing.created:%Y-%m-%d %H:%M} UTC); "
                                  "revoke it first, then create a new one.", code="exists")
        token = Token.objects.create(user=user)
        audit.record(user, "token.create", user)
    return token


def revoke_token(user) -> None:
    """Delete ``user``'s token: requests that send it are refused (401) from now on."""
    with transaction.atomic():
        deleted, _ = Token.objects.filter(user=user).delete()
        if not deleted:
            raise ValidationError("You have no API token to revoke.", code="missing")
        audit.record(user, "token.revoke", user)
