from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import profile, signin, views
from .views import tenant, vm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", signin.SignInView.as_view(), name="login"),
    path("logout/", signin.SignOutView.as_view(), name="logout"),
    # what tenants click (operators and admins see every VM here too)
    path("vms/", tenant.my_vms, name="my_vms"),
    path("vms/status/", tenant.vm_status, name="vm_status"),
    path("vms/<uuid:vm_id>/", vm.vm_detail, name="vm"),
    path("vms/<uuid:vm_id>/checkpoints/", vm.vm_checkpoints, name="vm_checkpoints"),
    path("vms/<uuid:vm_id>/checkpoint/", vm.vm_checkpoint, name="vm_checkpoint"),
    path("vms/<uuid:vm_id>/checkpoints/<uuid:checkpoint_id>/delete/", vm.vm_checkpoint_delete, name="vm_checkpoint_delete"),
    path("vms/<uuid:vm_id>/restore/", vm.vm_restore, name="vm_restore"),
    path("vms/<uuid:vm_id>/power/", vm.vm_power, name="vm_power"),
    path("activity/", tenant.activity, name="activity"),
    path("profile/", profile.profile, name="profile"),
    path("ops/", include("ops.urls")),
    path("api/v1/", include("ops.api.urls")),
    # one sign-in page for everything, throttled and audited (portal/signin.py)
    path("django-admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("django-admin/", admin.site.urls),
]
