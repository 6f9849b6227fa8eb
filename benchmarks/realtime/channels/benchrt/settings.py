"""Settings of the Django Channels side of Kiln's real-time benchmark.

Production settings (DEBUG off); the channel layer is chosen by
CHANNEL_LAYER: "memory" (InMemoryChannelLayer, one process) or "redis"
(channels_redis at REDIS_URL). Both keep their default capacities.
"""

import os

SECRET_KEY = "benchmark-only-secret-key-0123456789abcdef0123456789abcdef012345"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["daphne", "channels"]
MIDDLEWARE = []
ROOT_URLCONF = "benchrt.urls"
ASGI_APPLICATION = "benchrt.asgi.application"
USE_TZ = True
DATABASES = {}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

if os.environ.get("CHANNEL_LAYER", "memory") == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
