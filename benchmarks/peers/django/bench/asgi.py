"""ASGI entry point: `uvicorn bench.asgi:application` (the `django-uvicorn` target)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_async")
application = get_asgi_application()
