"""WSGI entry point: `gunicorn bench.wsgi` (the `django-gunicorn` target)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
application = get_wsgi_application()
