"""The audit log page: what it shows operators and admins."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_audit_detail_reads_as_key_value_pairs(client_for, admin_user):
    from ops.services import audit as audit_service

    audit_service.record(admin_user, "connection.update", None, fields={"port": 5986, "host": "vmm02"}, password_changed=False)
    page = client_for(admin_user).get(reverse("ops:audit")).content.decode()
    # PostgreSQL's jsonb keeps keys in its own order: check the pairs, not their order
    for pair in ("port=5986", "host=vmm02", "password_changed=False"):
        assert pair in page
    assert "fields={" in page
    assert "{&#x27;" not in page
