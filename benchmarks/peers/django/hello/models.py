"""TechEmpower's two tables. Their schema belongs to benchmarks/db/setup
(as it does for every target), hence `managed = False` and no migrations."""
from django.db import models


class World(models.Model):
    id = models.IntegerField(primary_key=True)
    randomnumber = models.IntegerField()

    class Meta:
        db_table = "world"
        managed = False


class Fortune(models.Model):
    id = models.IntegerField(primary_key=True)
    message = models.CharField(max_length=2048)

    class Meta:
        db_table = "fortune"
        managed = False
