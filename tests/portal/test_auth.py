import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_login_and_logout(client, make_user):
    make_user("ursula", "operator", password="correct-horse-9")
    response = client.post(reverse("login"), {"username": "ursula", "password": "wrong"})
    assert "didn't match" in response.content.decode()
    response = client.post(reverse("login"), {"username": "ursula", "password": "correct-horse-9"}, follow=True)
    assert response.redirect_chain and "ursula" in response.content.decode()
    response = client.post(reverse("logout"), follow=True)
    assert "Sign in to Slipway" in response.content.decode()


@pytest.mark.parametrize("role,home,visible,hidden", [
    # operators and admins land on the dashboard; admins read the schedules as they read the runs
    ("operator", "Today", ["Dashboard", "Runs", "Schedules", "Fabric"], ["Connections"]),
    ("admin", "Today", ["Dashboard", "Runs", "Schedules", "Connections", "Fabric"], []),
    ("tenant", "My VMs", ["My VMs", "My activity"], ["Dashboard", "Runs", "Schedules", "Fabric", "Connections"]),
])
def test_navigation_per_role(client_for, make_user, role, home, visible, hidden):
    c = client_for(make_user("u1", role))
    response = c.get(reverse("home"), follow=True)   # tenants are sent on to My VMs
    assert response.status_code == 200
    page = response.content.decode()
    assert f"<h1>{home}" in page
    nav = page[page.index('class="mainnav"'):page.index("</nav>")] if 'class="mainnav"' in page else ""
    for label in visible:
        assert f">{label}</a>" in nav
    for label in hidden:
        assert f">{label}</a>" not in nav


def test_user_without_role_is_told_so(client_for, make_user):
    page = client_for(make_user("nobody")).get(reverse("home")).content.decode()
    assert "no Slipway role" in page
