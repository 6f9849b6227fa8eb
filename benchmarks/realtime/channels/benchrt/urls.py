"""No HTTP views: the benchmark only speaks WebSocket (see asgi.py)."""

urlpatterns = []
