"""Resources freed by one framework to a new offer to another: p50 and p99.

Two frameworks share one agent. The holder of the agent's offer declines it with a long
filter; we time from the DECLINE call until the other framework's OFFERS event. Then
the roles swap (the new holder declines, the first framework is revived). Target: p50
<= 10 ms.

    python -m bench.bench_offer_latency [--rounds 100]
"""

from __future__ import annotations

import argparse
import time

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from bench.cluster import percentile, start
from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.wire import media


async def follow(
    client: SchedulerClient,
    offers: MemoryObjectSendStream[tuple[SchedulerClient, list[mesos_pb2.OfferID], float]],
) -> None:
    async with client.subscription() as events:
        async for event in events:
            if event.type == scheduler_pb2.Event.OFFERS:
                ids = [offer.id for offer in event.offers.offers]
                await offers.send((client, ids, time.perf_counter()))


async def measure(master: str, rounds: int) -> list[float]:
    send, receive = anyio.create_memory_object_stream[
        tuple[SchedulerClient, list[mesos_pb2.OfferID], float]
    ](100)
    first = SchedulerClient(
        master, mesos_pb2.FrameworkInfo(user="root", name="holder-a"), content_type=media.PROTOBUF
    )
    second = SchedulerClient(
        master, mesos_pb2.FrameworkInfo(user="root", name="holder-b"), content_type=media.PROTOBUF
    )
    latencies: list[float] = []
    async with first, second, anyio.create_task_group() as tg:
        tg.start_soon(follow, first, send)
        holder, offer_ids, _ = await receive.receive()
        tg.start_soon(follow, second, send)
        await anyio.sleep(0.5)  # the second framework is subscribed, with nothing to offer
        for _ in range(rounds):
            other = second if holder is first else first
            await other.revive()
            await anyio.sleep(0.01)
            declined_at = time.perf_counter()
            await holder.decline(offer_ids, refuse_seconds=3600.0)
            with anyio.fail_after(10):
                while True:
                    receiver, ids, received_at = await receive.receive()
                    if receiver is other:
                        break
            latencies.append(received_at - declined_at)
            holder, offer_ids = other, ids
        tg.cancel_scope.cancel()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    cluster = start()
    try:
        latencies = anyio.run(measure, cluster.master, args.rounds)
    finally:
        cluster.stop()
    ms = [x * 1000 for x in latencies]
    print(
        f"freed -> offered to another framework over {len(ms)} rounds: "
        f"p50 {percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms"
    )


if __name__ == "__main__":
    main()
