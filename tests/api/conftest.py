"""API clients that authenticate as a script would: ``Authorization: Token <key>``."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def api():
    """``api(user)``: a client sending that user's token; ``api(None)``: anonymous."""

    def make(user):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


from tests.portal.conftest import demo  # noqa: E402,F401  the demo's tenancy over the simulator
