"""The async views, for uvicorn (the `django-uvicorn` target)."""
from django.urls import path

from hello import async_views

urlpatterns = [
    path("plaintext", async_views.plaintext),
    path("json", async_views.json),
    path("db", async_views.db),
    path("queries", async_views.queries),
    path("fortunes", async_views.fortunes),
    path("updates", async_views.updates),
]
