from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import profile, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", profile.profile, name="profile"),
    path("ops/", include("ops.urls")),
    path("api/v1/", include("ops.api.urls")),
    path("django-admin/", admin.site.urls),
]
