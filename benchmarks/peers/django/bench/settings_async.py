"""The ASGI variant: the same settings, the async views."""
from .settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_async"
