"""`python -m bench.readme`: rewrite the README's generated blocks from the recorded results.

Each block sits between `<!-- NAME: ... -->` and `<!-- /NAME -->`. Its text is made only from
files that commands in this repo write (models/*/metadata.json, bench/results/*.json), so every
figure in the README can be traced to a command. `--check` exits 1 when the README is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench.results import load
from bench.table import table

ROOT = Path(__file__).resolve().parent.parent


def canvas_block() -> str:
    r = load("canvas_eval")
    if not r:
        return "_Not measured yet._"
    styles = ", ".join(f"{k} {v:.2%}" for k, v in r["by_style"].items())
    return (
        f"Accuracy of `{r['model']['name']}` v{r['model']['version']} on {r['images']:,} canvas re-drawings of "
        f"MNIST test digits: **{r['accuracy']:.2%}** ({styles})."
    )


def performance_block() -> str:
    r = load("serve_bench")
    if not r:
        return "_Not measured yet._"
    s, b = r["service"], r["baseline"]
    rows = [
        "| measure | this service | baseline (Flask + `model.predict`) |",
        "|---|---|---|",
        "| canvas PNG as JSON data URL, one client: p50 / p90 / p99 | "
        + " / ".join(f"{s['latency_canvas_json'][k]} ms" for k in ("p50_ms", "p90_ms", "p99_ms"))
        + " | "
        + " / ".join(f"{b['latency_canvas_json'][k]} ms" for k in ("p50_ms", "p90_ms", "p99_ms"))
        + " |",
        "| small PNG upload, one client: p50 / p90 / p99 | "
        + " / ".join(f"{s['latency_small_png'][k]} ms" for k in ("p50_ms", "p90_ms", "p99_ms"))
        + " | "
        + " / ".join(f"{b['latency_small_png'][k]} ms" for k in ("p50_ms", "p90_ms", "p99_ms"))
        + " |",
    ]
    for c in ("1", "4", "16", "64"):
        rows.append(
            f"| throughput at {c} connections | {s['throughput_rps'][c]:,.0f} req/s | "
            f"{b['throughput_rps'][c]:,.0f} req/s |"
        )
    rows += [
        f"| memory (RSS, all processes) | {s['rss_mb']:,.0f} MB | {b['rss_mb']:,.0f} MB |",
        f"| start to ready | {s['ready_s']} s | {b['ready_s']} s |",
        f"| errors during the run | {s['errors']} | {b['errors']} |",
    ]
    for n, v in s["batch_images_per_s"].items():
        rows.append(f"| batch of {n} per request | {v:,.0f} images/s | |")
    if "model_alone_batch_256_images_per_s" in r:
        alone = r["model_alone_batch_256_images_per_s"]
        rows.append(f"| the model alone (LiteRT, in process), batch of 256 | {alone:,.0f} images/s | |")
    ratios = r["ratios"]
    rows.append(
        f"\nRatios: p50 latency **{ratios['p50_latency_lower_x']}x** lower, throughput at 16 connections "
        f"**{ratios['throughput_16_higher_x']}x** higher. Medians of {r.get('repeats', 1)} runs, "
        f"measured {r['measured_at']}.{spread(r)}\n"
    )
    rows += targets_table(r)
    return "\n".join(rows)


def spread(r: dict) -> str:
    """How far single runs stray from the median on this shared machine."""
    p50s = sorted(run["service"]["latency_canvas_json"]["p50_ms"] for run in r.get("runs", []))
    rps = sorted(run["service"]["throughput_rps"]["16"] for run in r.get("runs", []))
    if len(p50s) < 2:
        return ""
    return (
        f" Single runs vary: canvas p50 from {p50s[0]} to {p50s[-1]} ms, throughput at 16 connections from "
        f"{rps[0]:,.0f} to {rps[-1]:,.0f} req/s (every run is in `bench/results/serve_bench.json`)."
    )


def targets_table(r: dict) -> list[str]:
    """The issue's targets against this run's medians."""
    s, ratios = r["service"], r["ratios"]
    checks = [
        ("canvas p50 ≤ 3 ms", f"{s['latency_canvas_json']['p50_ms']} ms", s["latency_canvas_json"]["p50_ms"] <= 3),
        ("p50 ≥ 30x lower than the baseline", f"{ratios['p50_latency_lower_x']}x", ratios["p50_latency_lower_x"] >= 30),
        (
            "throughput ≥ 15x the baseline (16 connections)",
            f"{ratios['throughput_16_higher_x']}x",
            ratios["throughput_16_higher_x"] >= 15,
        ),
        ("≥ 600 requests/s at 16 connections", f"{s['throughput_rps']['16']:,.0f}", s["throughput_rps"]["16"] >= 600),
        ("whole-server RSS ≤ 1 GB", f"{s['rss_mb']:,.0f} MB", s["rss_mb"] <= 1024),
        ("ready ≤ 8 s after start", f"{s['ready_s']} s", s["ready_s"] <= 8),
        (
            "batch of 256 at ≥ 5,000 images/s",
            f"{s['batch_images_per_s']['256']:,.0f} images/s",
            s["batch_images_per_s"]["256"] >= 5000,
        ),
    ]
    return ["| target | measured | met? |", "|---|---|---|"] + [
        f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in checks
    ]


def parts_block() -> str:
    r = load("request_parts")
    if not r:
        return "_Not measured yet._"
    rows = [
        "| stage of one canvas request | median |",
        "|---|---|",
        f"| gunicorn + Flask + middleware (`GET /healthz`, wrk, one connection) | {r['http_floor_ms']} ms |",
        f"| decode the PNG data and flatten it (libspng for plain PNGs) | {r['decode_ms']} ms |",
        f"| the same with Pillow alone | {r['decode_pillow_only_ms']} ms |",
        f"| preprocess (crop, stroke width, fit, centre) | {r['preprocess_ms']} ms |",
        f"| the CNN, one image (LiteRT) | {r['model_ms']} ms |",
        f"| everything between reading the body and writing the JSON | {r['whole_in_process_ms']} ms |",
    ]
    if "whole_cold_caches_ms" in r:
        rows.append(f"| the same, CPU caches flushed before each call | {r['whole_cold_caches_ms']} ms |")
    return "\n".join(rows + ["", latency_budget(r, load("serve_bench")), *batch_parts(r.get("batch"))])


def latency_budget(r: dict, bench: dict | None) -> str:
    """The canvas request's floor against what a p50 30x below the baseline's allows."""
    floor = r["http_floor_ms"]
    text = f"The HTTP floor plus the request's work in process come to {floor + r['whole_in_process_ms']:.2f} ms"
    if "whole_cold_caches_ms" in r:
        text += f" with warm caches and {floor + r['whole_cold_caches_ms']:.2f} ms with cold ones"
    if bench:
        need = bench["baseline"]["latency_canvas_json"]["p50_ms"] / 30
        p50 = bench["service"]["latency_canvas_json"]["p50_ms"]
        text += (
            f"; the server's measured p50 is {p50} ms, and a p50 30x below the baseline's "
            f"(table above) would be {need:.2f} ms"
        )
    return text + f". Measured {r['measured_at']}."


def batch_parts(b: dict | None) -> list[str]:
    """The batch request's stages, against the time a batch has at 5,000 images/s."""
    if not b:
        return []
    budget = b["images"] / 5000 * 1000  # ms per request at the target rate
    spare = (2 * budget - 2 * b["model_ms"]) / b["images"] * 1000  # us of CPU per image left on 2 cores
    return [
        "",
        f"| stage of one batch of {b['images']} small PNGs (in process) | median |",
        "|---|---|",
        f"| decode (Python per image, one core) | {b['decode_ms']:.1f} ms |",
        f"| preprocess (Python per image, one core) | {b['preprocess_ms']:.1f} ms |",
        f"| the CNN (LiteRT, both cores) | {b['model_ms']:.1f} ms |",
        "",
        f"At 5,000 images/s a batch of {b['images']} has {budget:.1f} ms: {2 * budget:.0f} ms of CPU on two cores. "
        f"The CNN alone uses {2 * b['model_ms']:.0f} of them, which leaves {max(0.0, spare):.0f} µs per image for "
        f"decoding and preprocessing; they take "
        f"{(b['decode_ms'] + b['preprocess_ms']) / b['images'] * 1000:.0f} µs.",
    ]


def batches_block() -> str:
    r = load("runtime_batches")
    if not r:
        return "_Not measured yet._"
    sizes = list(r["ms_per_image"])
    return "\n".join(
        [
            "| images per call | " + " | ".join(sizes) + " |",
            "|---" * (len(sizes) + 1) + "|",
            "| ms per image | " + " | ".join(f"{r['ms_per_image'][n]:.3f}" for n in sizes) + " |",
            "",
            f"`{r['model']['name']}` v{r['model']['version']} on {r['runtime']}, measured {r['measured_at']}."
            + compute_line(r),
        ]
    )


def compute_line(r: dict) -> str:
    """The CNN's arithmetic rate against the machine's best dense float32 rate."""
    if "macs_per_image" not in r:
        return ""
    share = r["model_gmacs_at_256"] / r["matmul_gmacs"]
    return (
        f" The CNN costs {r['macs_per_image'] / 1e6:.1f} M multiply-adds per image; on a batch of 256 LiteRT runs "
        f"them at {r['model_gmacs_at_256']:.0f} billion/s, {share:.0%} of the {r['matmul_gmacs']:.0f} billion/s "
        "that numpy's BLAS reaches on a 2048x2048 float32 matrix product on the same two cores."
    )


def reliability_block() -> str:
    soak, faults = load("soak"), load("faults")
    lines = []
    if soak:
        s = soak
        lines.append(
            f"- Soak (`python -m bench.soak`): {s['seconds']:.0f} s at {s['connections']} connections, "
            f"{s['workers']} workers: {s['requests']:,} requests ({s['rps']:,.0f}/s), **{s['errors']} errors**, "
            f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms; "
            f"server memory {s['rss_start_mb']:,.0f} MB at the start, "
            f"{s['rss_end_mb']:,.0f} MB at the end (growth {s['rss_growth_mb']:+.1f} MB, "
            f"peak {s['rss_max_mb']:,.0f} MB); the stated bound is 20 MB of growth per 60 s run."
        )
    if faults:
        f = faults
        lines.append(
            f"- Worker killed under load (`python -m bench.faults`): SIGKILL to one of {f['workers_before']} "
            f"workers while {f['clients']} clients send requests: {f['requests']:,} requests, "
            f"**{f['failed']} failed**{window(f)} (requests in flight on the killed worker, or queued at or "
            "reaching its socket before the kernel closed it); "
            f"gunicorn had a new worker running {f['replacement_seen_after_s']} s later."
        )
    return "\n".join(lines) or "_Not measured yet._"


def window(faults: dict) -> str:
    times = faults.get("failures_after_kill_s")
    return f", all within {max(times) * 1000:.0f} ms of the kill" if times else ""


def image_block() -> str:
    r = load("image_size")
    if not r:
        return "_Not measured yet._"
    added = r["venv_mb"] + r["service_mb"] + r["models_mb"]
    return (
        f"Expected image size: the `python:3.11.7-slim-bookworm` base plus about **{added:,.0f} MB**: the runtime "
        f"virtualenv {r['venv_mb']:,.0f} MB (CPU-only TensorFlow is most of it), `service/` {r['service_mb']} MB, "
        f"`models/` {r['models_mb']} MB (`python -m bench.image_size`, {r['measured_at']})."
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "image-size": image_block,
    "performance": performance_block,
    "request-parts": parts_block,
    "runtime-batches": batches_block,
    "reliability": reliability_block,
    "models-table": lambda: table(ROOT / "models"),
    "canvas-eval": canvas_block,
}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:[^\n]*-->\n)(.*?)(<!-- /{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"README has no block {name!r}")
        text = pattern.sub(lambda m, make=make: m.group(1) + make().rstrip() + "\n" + m.group(3), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README differs from its sources")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    current = readme.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is stale: run python -m bench.readme", file=sys.stderr)
            return 1
        return 0
    readme.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
