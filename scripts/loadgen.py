"""Open-loop load generator: single-architecture predict requests at a fixed rate.

Runs as its own process (``python -m scripts.loadgen``) so that the service under test and the
generator do not share an interpreter. Requests go out on a fixed schedule whether or not
earlier ones have returned (open loop), so a slow server shows up as latency rather than as a
lower rate; latency counts from each request's scheduled time, queueing included.

It speaks HTTP/1.1 over raw asyncio streams with pre-encoded requests on a pool of keep-alive
connections: a general-purpose Python HTTP client costs about a millisecond of CPU per
request, which on two cores would measure the client, not the service. Locust has that cost,
and wrk is closed-loop (a slow answer delays the next request, hiding queueing from the
percentiles), so neither measures "1,000 requests/s with p99 <= 5 ms" as this does. The
generator's own CPU time is reported, to show what it took from the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

import numpy as np

from models import DEFAULT_SPACE


def encode_requests(host: str, token: str, bodies: list[bytes]) -> list[bytes]:
    return [
        (
            f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(
    url: str, requests: list[bytes], rate: float, seconds: float, connections: int, timeout_s: float
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    total = int(rate * seconds)
    latencies_ms: list[float] = []
    errors: dict[str, int] = {}

    async def one(i: int, scheduled: float) -> None:
        reader, writer = await pool.get()
        try:
            writer.write(requests[i % len(requests)])
            status = await asyncio.wait_for(read_response(reader), timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            writer.close()
            pool.put_nowait(await asyncio.open_connection(host, port))
            return
        pool.put_nowait((reader, writer))
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
            return
        latencies_ms.append(1000 * (time.perf_counter() - scheduled))

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    values = np.asarray(latencies_ms) if latencies_ms else np.asarray([np.nan])
    return {
        "requests": total,
        "ok": len(latencies_ms),
        "errors": errors,
        "target_rps": rate,
        "achieved_rps": total / elapsed,
        "connections": connections,
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(np.max(values)),
        "generator_cpu_s": round(_cpu_s(), 2),
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--device", type=int, required=True)
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    from models import get_space

    archs = get_space(args.space).sample(1000, args.seed).tolist()
    bodies = [
        json.dumps({"device_id": args.device, "space": args.space, "architectures": [a]}).encode()
        for a in archs
    ]
    host = urlsplit(args.url).netloc
    requests = encode_requests(host, args.token, bodies)
    result = asyncio.run(
        run(args.url, requests, args.rate, args.seconds, args.connections, args.timeout)
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
