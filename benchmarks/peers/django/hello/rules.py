"""What the sync and async views share: TechEmpower's rules."""
import random

WORLD_ROWS = 10000
ADDITIONAL_FORTUNE = "Additional fortune added at request time."


def random_id():
    return random.randint(1, WORLD_ROWS)


def clamp_queries(request):
    """?queries=N clamped to 1..500; missing, empty or not a number means 1."""
    try:
        n = int(request.GET.get("queries", 1))
    except ValueError:
        return 1
    return min(max(n, 1), 500)
