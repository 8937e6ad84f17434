from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import signin, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", signin.SignInView.as_view(), name="login"),
    path("logout/", signin.SignOutView.as_view(), name="logout"),
    path("ops/", include("ops.urls")),
    # one sign-in page for everything, throttled and audited (portal/signin.py)
    path("django-admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("django-admin/", admin.site.urls),
]
