"""/api/v1/plans/ and /api/v1/subscriptions/ over the demo's tenancy and the simulator: what each role
gets, that a PATCH VMM must know about is a plan update run, and that bad input names the field and
changes nothing (neither Slipway nor VMM)."""
import pytest

from ops.models import AuditEntry, Plan, Run, Subscription
from tests.ops._engine_support import driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # runs are queued on commit, as in production
PLANS, SUBS = "/api/v1/plans/", "/api/v1/subscriptions/"


def _state(demo):
    return (list(Plan.objects.order_by("pk").values()), list(Subscription.objects.order_by("pk").values()),
            Run.objects.count(), AuditEntry.objects.count(), demo.sim.state()["user_roles"])


def test_who_sees_which_plans(api, demo):
    names = lambda user: [p["name"] for p in api(user).get(PLANS).json()["results"]]  # noqa: E731
    assert names(demo.admin) == names(demo.operator) == ["Contoso Gold", "Contoso Silver", "Fabrikam Dev"]
    assert names(demo.alice) == ["Contoso Gold", "Contoso Silver"] and names(demo.carol) == ["Fabrikam Dev"]
    gold = api(demo.admin).get(PLANS).json()["results"][0]
    assert gold["clouds"] == ["Gold"] and gold["checkpoint_permission"] == "create_view_restore"
    assert gold["checkpoints_kept"] == 1 and gold["connection"] == "vmm01" and gold["subscriptions"] == 1
    dev = Plan.objects.get(name="Fabrikam Dev")
    r = api(demo.alice).get(f"{PLANS}{dev.pk}/")
    assert r.status_code == 404 and "No plan" in r.json()["detail"]  # not revealed
    subs = api(demo.carol).get(SUBS).json()["results"]
    assert [s["name"] for s in subs] == ["Fabrikam Dev"] and subs[0]["members"] == [{"user": "carol", "vmm_user": "FABRIKAM\\carol"}]


def test_admin_creates_a_plan_and_a_subscription_with_its_own_vmm_role(api, demo, driver):
    c = api(demo.admin)
    r = c.post(PLANS, {"name": "Bronze", "connection": "vmm01", "clouds": ["Dev"],
                       "checkpoint_permission": "view_restore", "checkpoints_kept": 2,
                       "checkpoint_max_age_days": 7, "power_actions": ["start"]}, format="json")
    assert r.status_code == 201, r.json()
    plan = r.json()
    assert plan["clouds"] == ["Dev"] and plan["power_actions"] == ["start"] and plan["state"] == "public"
    r = c.post(SUBS, {"name": "Tailspin", "plan": "Bronze", "members": [{"user": "carol", "vmm_user": "TAILSPIN\\carol"}]},
               format="json")
    assert r.status_code == 201, r.json()
    sub = r.json()
    role = next(x for x in demo.sim.state()["user_roles"] if x["name"] == "Tailspin")
    assert sub["user_role_id"] == role["id"].lower() and role["members"] == ["TAILSPIN\\carol"]
    assert sub["checkpoint_permission"] == "none" and sub["run"]  # until VMM is read to carry it
    driver.drive()
    assert c.get(sub["url"]).json()["state"] == "succeeded"
    assert c.get(f"{SUBS}{sub['id']}/").json()["checkpoint_permission"] == "view_restore"

    # a PATCH VMM must know about answers 202 with the run; one only Slipway enforces, 200 without
    r = c.patch(f"{PLANS}{plan['id']}/", {"checkpoint_permission": "create_view_restore"}, format="json")
    assert r.status_code == 202 and r.json()["checkpoint_permission"] == "create_view_restore"
    run_url = r.json()["url"]
    assert r.json()["run"] == Run.objects.filter(kind="plan-update").latest("pk").pk
    # while it runs, another change VMM must know is refused naming it (409), and nothing changes
    r = c.patch(f"{PLANS}{plan['id']}/", {"clouds": ["Dev", "Silver"]}, format="json")
    assert r.status_code == 409 and "still being pushed to VMM by run" in r.json()["detail"]
    assert Plan.objects.get(pk=plan["id"]).clouds.count() == 1
    driver.drive()
    assert c.get(run_url).json()["state"] == "succeeded"
    role = next(x for x in demo.sim.state()["user_roles"] if x["name"] == "Tailspin")
    assert "Checkpoint" in role["permissions"]["Dev"]
    r = c.patch(f"{PLANS}{plan['id']}/", {"checkpoints_kept": 3}, format="json")
    assert r.status_code == 200 and r.json()["run"] is None and r.json()["checkpoints_kept"] == 3


@pytest.mark.parametrize("body, field, message", [
    ({"name": "Gold\u202e", "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "none"},
     "name", "hide or reorder text"),
    ({"name": "x" * 10_000, "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "none"},
     "name", "no more than 100 characters"),
    ({"name": "P", "connection": "vmm99", "clouds": ["Gold"], "checkpoint_permission": "none"},
     "connection", "no VMM connection named 'vmm99'"),
    ({"name": "P", "connection": "vmm01", "clouds": ["Platinum"], "checkpoint_permission": "none"},
     "clouds", "no cloud named 'Platinum'"),
    ({"name": "P", "connection": "vmm01", "clouds": [], "checkpoint_permission": "none"}, "clouds", "at least 1 cloud"),
    ({"name": "P", "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "all"},
     "checkpoint_permission", "not a valid choice"),
    ({"name": "P", "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "none", "checkpoints_kept": "3"},
     "checkpoints_kept", "valid integer"),
    ({"name": "P", "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "none", "power_actions": ["reboot"]},
     "power_actions.0", "not a valid choice"),
    ({"name": "P", "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "none", "colour": "red"},
     "colour", "unknown field"),
    ({"name": "$(Remove-SCUserRole); \"'", "connection": "vmm01", "clouds": ["Gold\n"], "checkpoint_permission": "none"},
     "clouds", "hide or reorder text (U+000A"),
    ({"name": "Contoso Gold", "connection": "vmm01", "clouds": ["Gold"], "checkpoint_permission": "none"},
     "name", "already exists"),
])
def test_bad_plans_are_refused_naming_the_field(api, demo, body, field, message):
    before = _state(demo)
    r = api(demo.admin).post(PLANS, body, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["errors"] and message in " ".join(r.json()["errors"][field]), r.json()
    assert _state(demo) == before


def test_bad_patches_and_subscriptions_change_nothing(api, demo):
    gold = Plan.objects.get(name="Contoso Gold")
    c = api(demo.admin)
    before = _state(demo)
    for body, field in (({"connection": "vmm01"}, "connection"), ({"checkpoints_kept": 0}, "checkpoints_kept"),
                        ({"remove_oldest_when_full": "yes"}, "remove_oldest_when_full"), ({}, "non_field_errors"),
                        ({"state": "gone"}, "state")):
        r = c.patch(f"{PLANS}{gold.pk}/", body, format="json")
        assert r.status_code == 400 and field in r.json()["errors"], (body, r.json())
    for body, field in (({"name": "X", "plan": "Nope"}, "plan"),
                        ({"name": "X", "plan": "Contoso Gold", "adopt_user_role": True}, "user_role"),
                        ({"name": "X", "plan": "Contoso Gold", "members": [{"user": "admin", "vmm_user": "A\\b"}]},
                         "members.0.user"),
                        ({"name": "X", "plan": "Contoso Gold", "user_role": "Contoso Gold", "adopt_user_role": True},
                         "user_role"),
                        ({"name": "X", "plan": "Contoso Gold", "adopt_user_role": True, "user_role": "Contoso Gold",
                          "members": [{"user": "carol", "vmm_user": "FABRIKAM\\carol"}]}, "members")):
        r = c.post(SUBS, body, format="json")
        assert r.status_code == 400 and field in r.json()["errors"], (body, r.json())
    # the other roles: an operator reads but may not change; a tenant may not see another's plan
    assert api(demo.operator).patch(f"{PLANS}{gold.pk}/", {"checkpoints_kept": 2}, format="json").status_code == 403
    assert api(demo.carol).patch(f"{PLANS}{gold.pk}/", {"checkpoints_kept": 2}, format="json").status_code == 403
    assert api(demo.operator).post(SUBS, {"name": "X", "plan": "Contoso Gold"}, format="json").status_code == 403
    assert _state(demo) == before
