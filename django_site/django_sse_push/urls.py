from __future__ import annotations

from django.urls import path

from django_sse_push import views

app_name = "sse_push"

urlpatterns = [
    path("ticket", views.ticket, name="ticket"),
]
