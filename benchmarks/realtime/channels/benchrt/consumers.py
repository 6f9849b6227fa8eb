"""One consumer, as Channels' tutorial writes a chat room: a member sends
{"join": "bench"} and is added to the group; any other message is sent to
the group through the channel layer."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

ROOM = "bench"


class BenchConsumer(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content, **kwargs):
        if content.get("join") == ROOM:
            await self.channel_layer.group_add(ROOM, self.channel_name)
            await self.send_json({"joined": ROOM})
        else:
            # The message as it came (seq, ts and, in the slow consumer
            # test, pad): members read it as the other targets' do.
            await self.channel_layer.group_send(ROOM, {"type": "bench.tick", "data": content})

    async def bench_tick(self, event):
        await self.send_json(event["data"])

    async def disconnect(self, code):
        await self.channel_layer.group_discard(ROOM, self.channel_name)
