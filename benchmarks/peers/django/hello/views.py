"""Sync views through Django's ORM, as Django's tutorial teaches."""
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from .models import Fortune, World
from .rules import ADDITIONAL_FORTUNE, clamp_queries, random_id


def plaintext(request):
    return HttpResponse(b"Hello, World!", content_type="text/plain")


def json(request):
    return JsonResponse({"message": "Hello, World!"})


def _world(world):
    return {"id": world.id, "randomNumber": world.randomnumber}


def db(request):
    return JsonResponse(_world(World.objects.get(id=random_id())))


def queries(request):
    worlds = [World.objects.get(id=random_id()) for _ in range(clamp_queries(request))]
    return JsonResponse([_world(w) for w in worlds], safe=False)


def fortunes(request):
    rows = list(Fortune.objects.all())
    rows.append(Fortune(id=0, message=ADDITIONAL_FORTUNE))
    rows.sort(key=lambda fortune: fortune.message)
    return render(request, "fortunes.html", {"fortunes": rows})


def updates(request):
    worlds = [World.objects.get(id=random_id()) for _ in range(clamp_queries(request))]
    for world in worlds:
        world.randomnumber = random_id()
        world.save(update_fields=["randomnumber"])
    return JsonResponse([_world(w) for w in worlds], safe=False)
