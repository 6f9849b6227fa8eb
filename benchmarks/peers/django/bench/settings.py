"""Settings of Kiln's Django benchmark peer: production settings (DEBUG off)
with no middleware, as TechEmpower's Django entry keeps none; the database
from psql's PG* variables, which benchmarks/run exports."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Only ever guards a benchmark on 127.0.0.1.
SECRET_KEY = "benchmark-only-secret-key-0123456789abcdef0123456789abcdef012345"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["hello"]
MIDDLEWARE = []
ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        # With DEBUG off Django caches the compiled templates.
        "OPTIONS": {"context_processors": []},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "hello_world"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        # One persistent connection per worker process, as TechEmpower's
        # entry keeps (gunicorn's sync workers serve one request at a time).
        "CONN_MAX_AGE": None,
        "OPTIONS": {"sslmode": "disable"},
    }
}

USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
