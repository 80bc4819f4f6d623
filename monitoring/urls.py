from django.urls import path

from monitoring.views import health_live, health_ready

urlpatterns = [
    path("live", health_live, name="health-live"),
    path("ready", health_ready, name="health-ready"),
]
