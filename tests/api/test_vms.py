"""GET /api/v1/vms/ and /api/v1/vms/{id}/: a tenant sees the VMs of their subscriptions, with the
permission and power actions their plan gives; another tenant's VM is a 404; bad filters are refused."""
import datetime as dt
import uuid

import pytest
from django.utils import timezone

from ops.models import Checkpoint, CheckpointPermission, Plan, Subscription

pytestmark = pytest.mark.django_db


def test_a_tenant_lists_only_the_vms_of_their_subscriptions(api, tenant, vm_a, vm_b):
    body = api(tenant).get("/api/v1/vms/").json()
    assert body["count"] == 1 and set(body) >= {"count", "next", "previous", "results"}
    vm = body["results"][0]
    assert vm["id"] == str(vm_a.vmm_id) and vm["name"] == "contoso-web01"
    assert vm["subscription"] == "Contoso" and vm["checkpoint_permission"] == "create_view_restore"
    assert vm["power_actions"] == ["start", "shutdown"]
    assert vm["page_url"].endswith(f"/vms/{vm_a.vmm_id}/")


def test_an_operator_sees_every_vm(api, operator, vm_a, vm_b):
    names = [v["name"] for v in api(operator).get("/api/v1/vms/").json()["results"]]
    assert names == ["contoso-web01", "fabrikam-db01"]


def test_a_vm_shows_its_checkpoints_with_their_expiry_under_the_plan(api, tenant, vm_a, plan):
    Plan.objects.filter(pk=plan.pk).update(checkpoint_max_age_days=14)
    made = timezone.now() - dt.timedelta(days=2)
    cp = Checkpoint.objects.create(vm=vm_a, vmm_id=uuid.uuid4(), name="baseline", description="before the upgrade",
                                   added_at=made)
    vm = api(tenant).get(f"/api/v1/vms/{vm_a.vmm_id}/").json()
    assert vm["checkpoint_count"] == 1
    (shown,) = vm["checkpoints"]
    assert shown["id"] == str(cp.vmm_id) and shown["name"] == "baseline"
    assert shown["description"] == "before the upgrade"
    assert dt.datetime.fromisoformat(shown["expires"]) == made + dt.timedelta(days=14)


def test_the_permission_shown_is_the_stricter_while_a_plan_change_is_pushed(api, tenant, vm_a, subscription_a):
    Subscription.objects.filter(pk=subscription_a.pk).update(enforced_permission=CheckpointPermission.VIEW_RESTORE)
    assert api(tenant).get(f"/api/v1/vms/{vm_a.vmm_id}/").json()["checkpoint_permission"] == "view_restore"


@pytest.mark.parametrize("vm_id", ["other", "0884ccf2-41e6-464e-bfa7-09f3f0c8d00d", "ⅷ", "x" * 300])
def test_a_vm_the_user_may_not_see_is_a_404_whatever_the_id(api, other_tenant, vm_a, vm_b, vm_id):
    response = api(other_tenant).get(f"/api/v1/vms/{vm_a.vmm_id if vm_id == 'other' else vm_id}/")
    assert response.status_code == 404 and "that you may see" in response.json()["detail"]


def test_filters_narrow_the_list_and_a_misspelt_one_is_refused(api, operator, vm_a, vm_b):
    client = api(operator)
    assert [v["name"] for v in client.get("/api/v1/vms/?search=fabri").json()["results"]] == ["fabrikam-db01"]
    assert [v["name"] for v in client.get("/api/v1/vms/?subscription=contoso").json()["results"]] == ["contoso-web01"]
    assert client.get("/api/v1/vms/?status=PowerOff").json()["count"] == 0
    refused = client.get("/api/v1/vms/?stauts=Running")
    assert refused.status_code == 400 and "stauts" in refused.json()["errors"]


def test_anonymous_is_asked_to_authenticate(api, vm_a):
    assert api(None).get("/api/v1/vms/").status_code == 401
