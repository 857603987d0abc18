"""Abusive clients against the production server, with a well-behaved client measuring in the same run.

python -m bench.abuse                     # 25 s of attack, both worker designs side by side (the report's figures)
python -m bench.abuse --quick --no-save   # smoke mode (CI): a few seconds, asserts on failures only

While the attack runs, a polite client posts the page's canvas request every quarter second and records
every answer's latency and every failure. The attack holds, each from its own loopback address (the
kernel routes all of 127.0.0.0/8 to this machine, so each attacker is a separate client to the server):
- slow headers: a request line, then one header byte per second, never finishing;
- slow bodies: a complete header announcing a body, then one body byte per second;
- idle: connections that send nothing;
- a flood: bursts of connections opened at once and dropped.
A connection the server closes is opened again, so the attack stays at full strength for its duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

from bench.load import rss_mb
from bench.payloads import canvas_json
from bench.results import emit
from bench.server import WORKER_DESIGNS, running_server

SLOW_HEADER = b"POST /predict HTTP/1.1\r\nHost: digits\r\nX-Padding: "
SLOW_BODY = b"POST /predict HTTP/1.1\r\nHost: digits\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"


@dataclass
class Attack:
    slow_headers: int = 300
    slow_bodies: int = 60
    idle: int = 500
    flood: int = 500  # connections opened at once, every flood_every seconds
    flood_every: float = 2.0
    seconds: float = 25.0


@dataclass
class Tally:
    """What the attackers saw: connections opened, and closed or refused by the server."""

    opened: dict = field(default_factory=dict)
    closed_by_server: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)

    def add(self, table: dict, kind: str) -> None:
        table[kind] = table.get(kind, 0) + 1


def source(i: int) -> str:
    """A distinct loopback source address per attacker: 127.0.1.1, 127.0.1.2, ... 127.0.x.y."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


async def hold(host: str, port: int, kind: str, i: int, until: float, tally: Tally) -> None:
    """Keep one abusive connection of `kind` open until `until`, reopening it when the server closes it."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=(source(i), 0))
        except OSError:
            tally.add(tally.refused, kind)
            await asyncio.sleep(0.5)
            continue
        tally.add(tally.opened, kind)
        try:
            await _trickle(reader, writer, kind, until)
            tally.add(tally.closed_by_server, kind)
        except (ConnectionError, OSError):
            tally.add(tally.closed_by_server, kind)
        except TimeoutError:
            pass  # our own deadline: the connection was held to the end
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        await asyncio.sleep(0.1)  # reconnect at once, but not in a tight loop


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, until: float) -> None:
    """Send the attack's bytes; return when the server closes the connection, time out at `until`."""
    if kind != "idle":
        writer.write(SLOW_HEADER[:-1] if kind == "slow_headers" else SLOW_BODY)  # headers never end / body starts
        await writer.drain()
    async with asyncio.timeout(max(0.0, until - time.monotonic())):
        while True:
            if kind != "idle":
                writer.write(b"a")
                await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    if await reader.read(65536) == b"":
                        return  # the server closed it
                    return  # the server answered (an error): it will close or ignore us


async def flood(host: str, port: int, attack: Attack, until: float, tally: Tally) -> None:
    """Bursts of `attack.flood` connections opened at once, held for a second, then dropped."""
    while time.monotonic() < until:
        results = await asyncio.gather(
            *(asyncio.open_connection(host, port, local_addr=(source(10_000 + i), 0)) for i in range(attack.flood)),
            return_exceptions=True,
        )
        for r in results:
            tally.add(tally.refused if isinstance(r, BaseException) else tally.opened, "flood")
        await asyncio.sleep(1.0)
        for r in results:
            if not isinstance(r, BaseException):
                r[1].close()
        await asyncio.sleep(max(0.0, attack.flood_every - 1.0))


async def attack_all(host: str, port: int, attack: Attack, tally: Tally) -> None:
    until = time.monotonic() + attack.seconds
    kinds = [("slow_headers", attack.slow_headers), ("slow_bodies", attack.slow_bodies), ("idle", attack.idle)]
    tasks, i = [], 0
    for kind, count in kinds:
        for _ in range(count):
            tasks.append(hold(host, port, kind, i, until, tally))
            i += 1
    if attack.flood:
        tasks.append(flood(host, port, attack, until, tally))
    await asyncio.gather(*tasks)


def polite_client(url: str, seconds: float, every: float = 0.25, raw: bool = False) -> dict:
    """POST the canvas request every `every` seconds (new connection each time, as a browser tab may)."""
    host, port = url.removeprefix("http://").split(":")
    body, latencies, failures = canvas_json(), [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.1", 0))
        try:
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or "digit" not in answer:
                failures.append(f"HTTP {response.status}")
            else:
                latencies.append((time.monotonic() - started) * 1000)
        except (OSError, http.client.HTTPException, ValueError) as e:
            failures.append(type(e).__name__)
        finally:
            conn.close()
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return {"latencies": latencies, "failures": failures} if raw else summary(latencies, failures)


def summary(latencies: list[float], failures: list[str]) -> dict:
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None  # noqa: E731
    return {
        "requests": len(latencies) + len(failures),
        "answered": len(latencies),
        "failures": len(failures),
        "failure_kinds": sorted(set(failures)),
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p99_ms": pick(0.99),
        "max_ms": round(ordered[-1], 2) if ordered else None,
    }


def raise_fd_limit() -> None:
    """The attack holds ~1,400 sockets; allow this process as many as the hard limit does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def under_attack(env: dict, attack: Attack, calm_s: float, after_s: float, rounds: int = 2) -> dict:
    """One server: the polite client alone, then `rounds` times under attack and alone again; memory throughout.

    The first attack also loads whatever code paths it is the first to reach; the second shows whether memory
    keeps growing with more attacks or was a one-time cost.
    """
    raise_fd_limit()
    with running_server(env) as (url, process):
        before = polite_client(url, calm_s)
        rss = {"before": rss_mb(process.pid), "peak": 0.0, "after": []}
        stages = [attack_round(url, process.pid, attack, after_s, rss) for _ in range(rounds)]
    return {
        "before": before,
        "during": merged([s["during"] for s in stages]),
        "after": merged([s["after"] for s in stages]),
        "attack": {key: merged_counts([s["attack"][key] for s in stages]) for key in stages[0]["attack"]},
        "rss_mb": rss,
    }


def attack_round(url: str, pid: int, attack: Attack, after_s: float, rss: dict) -> dict:
    """The attack with the polite client beside it, then the polite client alone for `after_s`; updates rss's peak
    and after (read at the end: by then a worker that the attack left larger has been replaced, see recycle() in
    service/worker.py, and the polite client's figures include the replacement)."""
    host, port = url.removeprefix("http://").split(":")
    tally, during = Tally(), {}
    client = threading.Thread(target=lambda: during.update(polite_client(url, attack.seconds - 2, raw=True)))
    client.start()

    def sample():
        while client.is_alive():
            rss["peak"] = max(rss["peak"], rss_mb(pid))
            time.sleep(1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    # The attack's event loop runs in a thread of its own: the caller may run one already (Playwright's, in tests).
    attacker = threading.Thread(target=asyncio.run, args=(attack_all(host, int(port), attack, tally),))
    attacker.start()
    attacker.join()
    client.join()
    sampler.join()
    time.sleep(2)  # let the server notice the attackers are gone
    after = polite_client(url, after_s, raw=True)
    rss["after"].append(rss_mb(pid))
    attacked = {"opened": tally.opened, "closed_by_server": tally.closed_by_server, "refused": tally.refused}
    return {"during": during, "after": after, "attack": attacked}


def merged(raws: list[dict]) -> dict:
    return summary([v for r in raws for v in r["latencies"]], [f for r in raws for f in r["failures"]])


def merged_counts(tables: list[dict]) -> dict:
    out: dict = {}
    for table in tables:
        for key, n in table.items():
            out[key] = out.get(key, 0) + n
    return out


def run(quick: bool, designs: dict[str, dict]) -> dict:
    attack = Attack(seconds=6, slow_headers=60, slow_bodies=20, idle=100, flood=100) if quick else Attack()
    calm = 2.0 if quick else 6.0
    # After an attack, both workers are replaced one at a time, about 3 s apart, within some 10 s of its end.
    after = 2.0 if quick else 16.0
    result = {"attack": attack.__dict__, "after_s": after, "designs": {}, "measured_at": time.strftime("%Y-%m-%d")}
    for name, env in designs.items():
        result["designs"][name] = under_attack(env, attack, calm, after)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, smaller attack (CI smoke mode)")
    parser.add_argument("--no-save", action="store_true", help="print only; do not write bench/results/abuse.json")
    parser.add_argument("--design", choices=list(WORKER_DESIGNS), action="append", help="only these (default: all)")
    args = parser.parse_args(argv)
    designs = {name: WORKER_DESIGNS[name] for name in (args.design or WORKER_DESIGNS)}
    emit(run(args.quick, designs), None if args.no_save else "abuse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
