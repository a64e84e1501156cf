"""URL routes. nginx sends /sse/ to the SSE service and everything else here."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.static import serve

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("demo.urls")),
    path("live/", include("django_sse_push.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    # Straight from the apps' static/ folders, no collectstatic needed.
    urlpatterns += staticfiles_urlpatterns()
else:
    # From DJANGO_STATIC_ROOT (run collectstatic first). Fine for the demo's two small files;
    # for real traffic let nginx alias /static/ to the same folder.
    urlpatterns += [
        re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
    ]
