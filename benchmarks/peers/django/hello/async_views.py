"""Async views for uvicorn. Django's ORM has no async database driver (its
`aget`/`asave` run the sync code in a thread), so these query through
psycopg 3's async connection pool directly, as TechEmpower's async Python
entries do; the fortunes page still goes through Django's template."""
import asyncio
import os

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from psycopg_pool import AsyncConnectionPool

from .rules import ADDITIONAL_FORTUNE, clamp_queries, random_id

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = %s"
UPDATE_WORLD = "UPDATE world SET randomnumber = %s WHERE id = %s"


def _pool_size():
    """The harness's DB_POOL connections shared out between the workers."""
    total = int(os.environ.get("DB_POOL", "8"))
    workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    return max(1, -(-total // workers))


def _conninfo():
    env = os.environ.get
    return (
        f"host={env('PGHOST', '127.0.0.1')} port={env('PGPORT', '5432')} "
        f"user={env('PGUSER', 'postgres')} dbname={env('PGDATABASE', 'hello_world')} sslmode=disable"
    )


# Opened on the first request, inside the worker's event loop.
_pool = AsyncConnectionPool(
    _conninfo(), min_size=_pool_size(), max_size=_pool_size(), open=False, kwargs={"autocommit": True}
)
_opened = False
# The first requests arrive together: one of them opens the pool, the
# others wait for it (opening it twice at once trips psycopg_pool).
_open_lock = asyncio.Lock()


async def _connection():
    global _opened
    if not _opened:
        async with _open_lock:
            if not _opened:
                await _pool.open(wait=True)
                _opened = True
    return _pool.connection()


async def _random_worlds(conn, count):
    worlds = []
    for _ in range(count):
        cursor = await conn.execute(SELECT_WORLD, (random_id(),))
        row = await cursor.fetchone()
        worlds.append({"id": row[0], "randomNumber": row[1]})
    return worlds


async def plaintext(request):
    return HttpResponse(b"Hello, World!", content_type="text/plain")


async def json(request):
    return JsonResponse({"message": "Hello, World!"})


async def db(request):
    async with await _connection() as conn:
        worlds = await _random_worlds(conn, 1)
    return JsonResponse(worlds[0])


async def queries(request):
    async with await _connection() as conn:
        worlds = await _random_worlds(conn, clamp_queries(request))
    return JsonResponse(worlds, safe=False)


class _Fortune:
    __slots__ = ("id", "message")

    def __init__(self, id, message):
        self.id = id
        self.message = message


async def fortunes(request):
    async with await _connection() as conn:
        cursor = await conn.execute("SELECT id, message FROM fortune")
        rows = [_Fortune(*row) for row in await cursor.fetchall()]
    rows.append(_Fortune(0, ADDITIONAL_FORTUNE))
    rows.sort(key=lambda fortune: fortune.message)
    return render(request, "fortunes.html", {"fortunes": rows})


async def updates(request):
    async with await _connection() as conn:
        worlds = await _random_worlds(conn, clamp_queries(request))
        for world in worlds:
            world["randomNumber"] = random_id()
            await conn.execute(UPDATE_WORLD, (world["randomNumber"], world["id"]))
    return JsonResponse(worlds, safe=False)
