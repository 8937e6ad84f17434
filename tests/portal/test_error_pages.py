"""403 and 404 are Slipway pages that say why and lead home, not Django's bare defaults."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_tenant_on_an_operator_page_is_told_which_role_it_needs(client_for, tenant):
    response = client_for(tenant).get(reverse("ops:clusters"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "This page is for: admin, operator." in page
    assert f"signed in as {tenant.username}" in page
    assert 'class="topbar"' in page and f'href="{reverse("home")}"' in page


def test_a_missing_object_is_a_slipway_404_page(client_for, operator):
    response = client_for(operator).get(reverse("ops:run", args=[999999]))
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page and "/ops/runs/999999/" in page and 'class="topbar"' in page


def test_an_unknown_url_is_a_slipway_404_page_without_resolver_noise(client_for, operator):
    page = client_for(operator).get("/no/such/page/").content.decode()
    assert "/no/such/page/" in page and "Resolver404" not in page and "tried" not in page
