"""/api/v1/ (included by portal/urls.py under the namespace "api")."""
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from . import docs, plans, runs, vms

app_name = "api"

router = SimpleRouter()
router.register("runs", runs.RunViewSet, basename="run")
router.register("vms", vms.VMViewSet, basename="vm")
router.register("plans", plans.PlanViewSet, basename="plan")
router.register("subscriptions", plans.SubscriptionViewSet, basename="subscription")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path("docs/", docs.api_docs, name="docs"),
    path("runbooks/", runs.RunbookList.as_view(), name="runbooks"),
    *router.urls,
]
