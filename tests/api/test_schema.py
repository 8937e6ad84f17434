"""The OpenAPI schema builds without a warning, and the docs page works under a CSP with no
inline script, from our own static files."""
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_validates_with_no_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/runs/", "/api/v1/runs/{id}/", "/api/v1/runs/{id}/events/", "/api/v1/runs/{id}/cancel/",
                 "/api/v1/runs/{id}/retry/", "/api/v1/runs/{id}/skip/", "/api/v1/runs/{id}/abort/", "/api/v1/runbooks/"):
        assert f"  {path}:" in text, path
    assert "tokenAuth" in text and "cookieAuth" in text


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Slipway API"
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "script-src 'self'" in docs["Content-Security-Policy"] and "unsafe-inline" not in docs["Content-Security-Policy"]
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts)  # no inline script
    assert "<style" not in html and " style=" not in html and "//cdn" not in html and "https://" not in html
    files = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert len(files) == 5
    for name in files:  # served by the ASGI server from the installed apps' and our static/ folders
        assert finders.find(name), name
    assert client.post("/api/v1/docs/").status_code == 405
