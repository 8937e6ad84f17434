from django.urls import path

from .views import audit, connections, fabric, patch, patchreport, plans, runs, schedules, subscriptions

app_name = "ops"

urlpatterns = [
    # fabric inventory (operators, admins)
    path("fabric/", fabric.clusters, name="clusters"),
    path("fabric/clusters/<int:pk>/", fabric.cluster_detail, name="cluster"),
    path("fabric/hosts/<int:pk>/", fabric.host_detail, name="host"),
    path("fabric/vms/", fabric.vm_list, name="vms"),
    path("fabric/vms/<int:pk>/", fabric.vm_detail, name="vm"),
    path("fabric/sync/", fabric.sync_now, name="sync"),
    # server connections (admins)
    path("connections/", connections.connection_list, name="connections"),
    path("connections/new/", connections.connection_edit, name="connection_new"),
    path("connections/<int:pk>/", connections.connection_edit, name="connection_edit"),
    path("connections/<int:pk>/delete/", connections.connection_delete, name="connection_delete"),
    path("connections/<int:pk>/test/", connections.connection_test, name="connection_test"),
    # audit log
    path("audit/", audit.audit_list, name="audit"),
]
urlpatterns += runs.urlpatterns + schedules.urlpatterns + patch.urlpatterns + patchreport.urlpatterns
# hosting plans and subscriptions (admins; operators read)
urlpatterns += plans.urlpatterns + subscriptions.urlpatterns
