from __future__ import annotations

from django.urls import path

from django_sse_push import views

app_name = "sse_push"
# The name pages reverse to find the ticket URL (and the system check E011, to find it missing).
TICKET_URL_NAME = f"{app_name}:ticket"

urlpatterns = [
    path("ticket", views.ticket, name="ticket"),
]
