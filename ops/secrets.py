"""Encryption at rest for fabric credentials (Fernet, AES-128-CBC + HMAC)."""
import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.SLIPWAY_FERNET_KEY
    if not key:
        digest = hashlib.sha256(("slipway-credentials:" + settings.SECRET_KEY).encode()).digest()
        key = base64.urlsafe_b64encode(digest)
    return Fernet(key)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise ValueError(
            "stored password cannot be decrypted: SECRET_KEY or SLIPWAY_FERNET_KEY changed since it was saved; "
            "enter the password again"
        ) from exc
