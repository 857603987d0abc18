"""`python -m bench.readme`: rewrite the generated blocks of README.md and bench/RESULTS.md from the recorded results.

Each block sits between `<!-- NAME: ... -->` and `<!-- /NAME -->`. Its text is made only from files that commands
in this repo write (models/*/metadata.json, bench/results/*.json) and from git, so every figure can be traced to a
command and a commit. `--check` exits 1 when either file is stale.

A result is "possibly stale" when code it measures (Source.measures) differs, in the working tree, from the commit
it was recorded at. That is computed from git alone, so the same tree always renders the same text.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.results import ROOT, code_changes, git, load
from bench.table import rows, table
from service.config import DEFAULT_MODEL

README = ROOT / "README.md"
REPORT = ROOT / "bench" / "RESULTS.md"


@dataclass(frozen=True)
class Source:
    """The command that records bench/results/NAME.json, and the paths whose code its figures depend on."""

    command: str
    measures: tuple[str, ...]


SERVER = ("service", "models", "bench/server.py", "bench/load.py", "bench/payloads.py")
SOURCES = {
    "serve_bench": Source(
        "python -m bench.serve_bench --compare --baseline 96d88f4",
        (*SERVER, "bench/serve_bench.py", "bench/baseline_app.py", "bench/runtime_batches.py"),
    ),
    "request_parts": Source("python -m bench.request_parts", (*SERVER, "bench/request_parts.py", "bench/timing.py")),
    "runtime_batches": Source("python -m bench.runtime_batches", ("service", "models", "bench/runtime_batches.py")),
    "soak": Source("python -m bench.soak --compare", (*SERVER, "bench/soak.py")),
    "faults": Source("python -m bench.faults --compare", (*SERVER, "bench/faults.py")),
    "abuse": Source("python -m bench.abuse", (*SERVER, "bench/abuse.py")),
    "corrections": Source("python -m bench.corrections", (*SERVER, "bench/corrections.py", "bench/postgres.py")),
    "canvas_eval": Source(
        "MNIST_DIR=... python -m bench.canvas_eval --save", ("service", "models", "bench/canvas_eval.py")
    ),
    "numbers_eval": Source(
        "MNIST_DIR=... python -m bench.numbers_eval --save",
        ("service", "models", "bench/numbers_eval.py", "bench/canvas_eval.py"),
    ),
    "ood_eval": Source(
        "MNIST_DIR=... python -m bench.ood_eval --save",
        ("service", "models", "bench/ood_eval.py", "bench/canvas_eval.py", "train/nondigits.py"),
    ),
    "image": Source(
        "python -m bench.image --savedmodel",
        (
            "service",
            "models",
            "Dockerfile",
            "requirements/serve.txt",
            "requirements/savedmodel.txt",
            "bench/image.py",
            "bench/container.py",
        ),
    ),
}


# ---- provenance: when, where and at which commit a result was measured, and whether code changed since ----------


def changed_since(name: str) -> list[str]:
    """The paths result NAME measures whose code differs in the working tree from the commit it was recorded at."""
    r = load(name)
    if not r or not r.get("commit"):
        return []
    changed = code_changes(r["commit"], SOURCES[name].measures)
    if changed is None:
        raise SystemExit(
            f"bench/results/{name}.json names commit {r['commit']}, which git cannot find here (a shallow clone?)"
        )
    return changed


def shown(path: str) -> str:
    return f"`{path}/`" if (ROOT / path).is_dir() else f"`{path}`"


def measured_on(r: dict) -> str:
    """Date of measurement; results recorded before measured_at existed get their commit's date."""
    return r.get("measured_at") or git("show", "-s", "--format=%cs", r["commit"]) or "an unknown date"


def machine_text(r: dict) -> str:
    m = r.get("machine") or {}
    text = f"{m.get('cpu') or 'an unknown CPU'}, {m.get('cores') or '?'} cores, {m.get('memory_gb') or '?'} GB memory"
    return text + (
        " (machine backfilled: read later, on the same machine kind)" if "backfilled" in m.get("note", "") else ""
    )


def commit_text(r: dict) -> str:
    if not r.get("commit"):
        return "an unknown commit"
    return f"commit `{r['commit'][:7]}`" + (" with uncommitted changes" if r.get("dirty") else "")


def provenance(name: str) -> str:
    """One paragraph: date, machine, commit, command, and whether code it measures has changed since."""
    r, changed = load(name), changed_since(name)
    text = (
        f"_Measured {measured_on(r)} on {machine_text(r)}, at {commit_text(r)}, by `{SOURCES[name].command}` "
        f"(recorded in `bench/results/{name}.json`)._"
    )
    if changed:
        return text + f" **Possibly stale:** code it measures has changed since: {', '.join(map(shown, changed))}."
    return text


def index_block() -> str:
    lines = [
        "| result | command | measured | commit | machine | code it measures, since then |",
        "|---|---|---|---|---|---|",
    ]
    for name, source in SOURCES.items():
        r = load(name)
        if not r:
            lines.append(f"| `{name}` | `{source.command}` | not yet | | | |")
            continue
        changed = changed_since(name)
        status = "**changed**: " + ", ".join(map(shown, changed)) if changed else "unchanged"
        sha = f"`{r['commit'][:7]}`" if r.get("commit") else "?"
        m = r.get("machine") or {}
        cpu = f"{m.get('cpu') or '?'}, {m.get('cores') or '?'} cores"
        lines.append(f"| `{name}` | `{source.command}` | {measured_on(r)} | {sha} | {cpu} | {status} |")
    return "\n".join(lines)


# ---- README: the headline figures ---------------------------------------------------------------------------------


HEADLINE_SOURCES = {  # result: the headline figures made from it
    "canvas_eval": "canvas accuracy",
    "ood_eval": "not a digit",
    "serve_bench": "latency, throughput, memory and start time",
    "soak": "soak",
    "faults": "worker replacement",
    "image": "image size, start and memory in the container",
}


def headline_block() -> str:
    """A few figures for someone deciding whether to use the service, each from a recorded result."""
    r = {name: load(name) for name in HEADLINE_SOURCES}
    lines = [accuracy_line(r["canvas_eval"]) + refusal_text(r["ood_eval"])]
    if r["serve_bench"]:
        lines += speed_lines(r["serve_bench"])
    if r["soak"] and r["faults"]:
        lines.append(
            f"- **{r['soak']['errors']} errors** in {r['soak']['requests']:,} requests over a "
            f"{r['soak']['seconds']:.0f} s soak at {r['soak']['connections']} connections; a worker killed under load "
            f"costs {r['faults']['failed']} of {r['faults']['requests']:,} requests and is replaced "
            f"{r['faults']['replacement_seen_after_s']} s later."
        )
    if r["image"]:
        lines.append(image_headline(r["image"]))
    return "\n".join([*lines, "", headline_footer(r["serve_bench"])])


def accuracy_line(canvas: dict | None) -> str:
    m = next(m for m in rows(ROOT / "models") if m["name"] == DEFAULT_MODEL)
    text = (
        f"- **{m['metrics']['test_accuracy']:.2%}** of the {m['metrics']['test_images']:,} MNIST test digits "
        f"recognised by the default model (`{m['name']}` v{m['version']})"
    )
    if canvas:
        text += f"; **{canvas['accuracy']:.2%}** of {canvas['images']:,} re-drawings of them as canvas drawings"
    return text + "."


def refusal_text(ood: dict | None) -> str:
    """The default model's "not a digit": how much of the held-out non-digits and of MNIST test it refuses."""
    m = next((m for m in (ood or {}).get("models", []) if m["model"]["name"] == DEFAULT_MODEL), None)
    if m is None or not m["threshold"]:
        return ""
    refused = m["refused_at_threshold"]
    return (
        f' It answers "not a digit" to **{refused["all_nondigits"]:.1%}** of held-out non-digits (scripts, fonts '
        f"and shapes it never trained on), and to {refused['mnist_test']:.2%} of the MNIST test digits and "
        f"{refused['canvas']:.1%} of their canvas re-drawings."
    )


def speed_lines(bench: dict) -> list[str]:
    s, b, x = bench["service"], bench["baseline"], bench["ratios"]
    return [
        f"- A canvas drawing answered in **{s['latency_canvas_json']['p50_ms']} ms** (median, one client), "
        f"{x['p50_latency_lower_x']}x less time than the usual tutorial deployment, Flask calling Keras's "
        f"`model.predict` ({b['latency_canvas_json']['p50_ms']} ms).",
        f"- **{s['throughput_rps']['16']:,.0f} requests/s** at 16 connections ({x['throughput_16_higher_x']}x the "
        f"tutorial's {b['throughput_rps']['16']:,.0f}), in **{s['rss_mb']:,.0f} MB** of memory for the whole "
        f"server ({b['rss_mb']:,.0f} MB), ready **{s['ready_s']} s** after start ({b['ready_s']} s).",
    ]


def headline_footer(bench: dict | None) -> str:
    where = (
        f" on a {bench['machine']['cores']}-core {bench['machine']['cpu']}" if bench and bench.get("machine") else ""
    )
    text = (
        f"Measured{where}, a small machine. [bench/RESULTS.md](bench/RESULTS.md) has every benchmark, how it was run, "
        "and the date, machine and commit of each figure."
    )
    stale = [figures for name, figures in HEADLINE_SOURCES.items() if changed_since(name)]
    if stale:
        text += f" Possibly stale, as code they measure has changed since: {', '.join(stale)}."
    return text


# ---- bench/RESULTS.md: one block per recorded result --------------------------------------------------------------


def with_provenance(name: str, body: Callable[[dict], list[str]]) -> Callable[[], str]:
    """A block: the result's provenance paragraph, then what `body` makes of the result."""

    def block() -> str:
        r = load(name)
        return "\n".join([provenance(name), "", *body(r)]) if r else "_Not measured yet._"

    return block


def latencies(entry: dict) -> str:
    return " / ".join(f"{entry[k]} ms" for k in ("p50_ms", "p90_ms", "p99_ms"))


def performance(r: dict) -> list[str]:
    servers = [("this service", r["service"]), ("baseline (Flask + `model.predict`)", r["baseline"])]
    if "gthread_before" in r:  # the threaded worker the service used before the gevent one, same run
        servers.append(("this service, former gthread worker", r["gthread_before"]))
    if "service_at_ref" in r:  # the service as of an earlier commit (serve_bench --baseline REF), same run
        servers.append((f"this service at {r['ref']['name']} (`{r['ref']['commit'][:7]}`)", r["service_at_ref"]))

    def row(measure: str, cell: Callable[[dict], str]) -> str:
        return f"| {measure} | " + " | ".join(cell(s) if s else "" for _, s in servers) + " |"

    rows = [
        "| measure | " + " | ".join(name for name, _ in servers) + " |",
        "|---" * (len(servers) + 1) + "|",
        row("canvas PNG as JSON data URL, one client: p50 / p90 / p99", lambda s: latencies(s["latency_canvas_json"])),
        row("small PNG upload, one client: p50 / p90 / p99", lambda s: latencies(s["latency_small_png"])),
    ]
    if "latency_number_json" in r["service"]:  # this service only: the baseline reads one digit per image
        rows.append(
            row(
                "5-digit canvas (952x280 PNG) as JSON data URL, one client: p50 / p90 / p99",
                lambda s: latencies(s["latency_number_json"]) if "latency_number_json" in s else "",
            )
        )
    for c in ("1", "4", "16", "64"):
        rows.append(row(f"throughput at {c} connections", lambda s, c=c: f"{s['throughput_rps'][c]:,.0f} req/s"))
    rows += [
        row("memory (RSS, all processes)", lambda s: f"{s['rss_mb']:,.0f} MB"),
        row("start to ready", lambda s: f"{s['ready_s']} s"),
        row("errors during the run", lambda s: f"{s['errors']}"),
    ]
    for n in r["service"]["batch_images_per_s"]:
        batch = lambda s, n=n: f"{s['batch_images_per_s'][n]:,.0f} images/s" if "batch_images_per_s" in s else ""  # noqa: E731
        rows.append(row(f"batch of {n} per request", batch))
    if "model_alone_batch_256_images_per_s" in r:
        alone = r["model_alone_batch_256_images_per_s"]
        rows.append(
            f"| the model alone (LiteRT, in process), batch of 256 | {alone:,.0f} images/s |"
            + " |" * (len(servers) - 1)
        )
    ratios = r["ratios"]
    number = ratios.get("p50_5_digits_over_1_digit_x")
    number = f" A 5-digit canvas's p50 is **{number}x** a one-digit canvas's." if number else ""
    if "p50_canvas_over_ref_x" in ratios:
        number += (
            f" A one-digit canvas's p50 is **{ratios['p50_canvas_over_ref_x']}x** the service's at "
            f"{r['ref']['name']}, a small PNG's **{ratios['p50_small_png_over_ref_x']}x**."
        )
    rows.append(
        f"\nRatios: p50 latency **{ratios['p50_latency_lower_x']}x** lower, throughput at 16 connections "
        f"**{ratios['throughput_16_higher_x']}x** higher.{number} Medians of {r.get('repeats', 1)} runs.{spread(r)}"
    )
    return rows


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


def request_parts(r: dict) -> list[str]:
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
    if "number" in r:  # a 5-digit canvas (952x280 PNG): its stages
        n = r["number"]
        rows += [
            f"| 5-digit canvas: decode the PNG data and flatten it | {n['decode_ms']} ms |",
            f"| 5-digit canvas: read it (segment, preprocess {n['digits']} digits, the CNN) | {n['read_ms']} ms |",
            f"| 5-digit canvas: everything between reading the body and writing the JSON | "
            f"{n['whole_in_process_ms']} ms |",
        ]
    return [*rows, "", latency_budget(r, load("serve_bench"))]


def latency_budget(r: dict, bench: dict | None) -> str:
    """The canvas request's floor against a p50 30x below the baseline's."""
    floor = r["http_floor_ms"]
    text = f"The HTTP floor plus the request's work in process come to {floor + r['whole_in_process_ms']:.2f} ms"
    if "whole_cold_caches_ms" in r:
        text += f" with warm caches and {floor + r['whole_cold_caches_ms']:.2f} ms with cold ones"
    if bench:
        need = bench["baseline"]["latency_canvas_json"]["p50_ms"] / 30
        p50 = bench["service"]["latency_canvas_json"]["p50_ms"]
        text += (
            f"; the server's measured p50 is {p50} ms, and a p50 30x below the baseline's "
            f"(first section) would be {need:.2f} ms"
        )
    return text + "."


def batch_parts(r: dict) -> list[str]:
    """The batch request's stages, against the time a batch has at 5,000 images/s."""
    b = r.get("batch")
    if not b:
        return ["_Not measured yet._"]
    budget = b["images"] / 5000 * 1000  # ms per request at 5,000 images/s
    spare = (2 * budget - 2 * b["model_ms"]) / b["images"] * 1000  # us of CPU per image left on 2 cores
    return [
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


def runtime_batches(r: dict) -> list[str]:
    sizes = list(r["ms_per_image"])
    return [
        "| images per call | " + " | ".join(sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
        "| ms per image | " + " | ".join(f"{r['ms_per_image'][n]:.3f}" for n in sizes) + " |",
        "",
        f"`{r['model']['name']}` v{r['model']['version']} on {r['runtime']}." + compute_line(r),
    ]


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


def soak(s: dict) -> list[str]:
    return [soak_line(s)] + (
        [f"- The former gthread worker, same run: {soak_line(s['gthread_before'])}"] if "gthread_before" in s else []
    )


def soak_line(s: dict) -> str:
    return (
        f"{s['seconds']:.0f} s at {s['connections']} connections, {s['workers']} workers: {s['requests']:,} requests "
        f"({s['rps']:,.0f}/s), **{s['errors']} errors**, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms; "
        f"server memory {s['rss_start_mb']:,.0f} MB at the start, {s['rss_end_mb']:,.0f} MB at the end "
        f"(growth {s['rss_growth_mb']:+.1f} MB, peak {s['rss_max_mb']:,.0f} MB)."
    )


def faults(f: dict) -> list[str]:
    before = f.get("gthread_before")
    return [faults_line(f)] + ([f"- The former gthread worker, same run: {faults_line(before)}"] if before else [])


def faults_line(f: dict) -> str:
    times = f.get("failures_after_kill_s")
    within = f", all within {max(times) * 1000:.0f} ms of the kill" if times else ""
    return (
        f"SIGKILL to one of {f['workers_before']} workers while {f['clients']} clients send requests: "
        f"{f['requests']:,} requests, **{f['failed']} failed**{within} (requests in flight on the killed worker, or "
        "queued at or reaching its socket before the kernel closed it); "
        f"gunicorn had a new worker running {f['replacement_seen_after_s']} s later."
    )


def corrections(r: dict) -> list[str]:
    rows = [
        "Durability: 8 clients post 200 corrections to 2 workers; after 50 are acknowledged one worker is SIGKILLed; a "
        "client whose connection fails sends the same correction again (same `Idempotency-Key`). Then a restart on the "
        "same database, and the list is compared with the acknowledgements. Latency: one client, one keep-alive "
        "connection per server, taking in turn a prediction of a canvas drawing, a correction of it as the page sends "
        "one (the worker kept that reading: `service/recent.py`), a correction of the same drawing encoded otherwise, "
        "which no worker has read (as from an API client that never asked for a prediction), and the same prediction "
        "from the service before corrections (its commit below), running beside it.",
        "",
        "| database | acknowledged | listed after restart | missing | listed twice | failed tries retried | "
        "correction p50 | correction p50, not read before | prediction p50 | prediction p50 before corrections |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, v in r.items():  # one row per database measured
        if not isinstance(v, dict) or "durability" not in v:
            continue
        d, t = v["durability"], v["latency"]
        rows.append(
            f"| {kind} | {d['acknowledged']} of {d['posted']} | {d['listed_after_restart']} | **{d['missing']}** | "
            f"**{d['listed_twice']}** | {d['failed_tries_retried']} | **{t['correction_p50_ms']} ms** | "
            f"{t.get('correction_unread_p50_ms', '-')} ms | {t['predict_p50_ms']} ms | "
            f"{t['baseline']['predict_p50_ms']} ms (`{t['baseline']['commit'][:7]}`) |"
        )
    rows += [
        "",
        "In one process, the medians of a correction's parts against reading the same drawing as `/predict` does:",
        "",
    ]
    for kind, v in r.items():
        if isinstance(v, dict) and "parts" in v:
            p = v["parts"]
            rows.append(
                f"- {kind}: building it (decoding, preprocessing one digit, the model's reading, the PNG) "
                f"{p['build_p50_ms']} ms, or {p.get('build_read_p50_ms', '-')} ms from the reading kept; "
                f"committing it {p['commit_p50_ms']} ms; "
                f"reading the drawing {p['read_p50_ms']} ms."
            )
    rows += [
        "",
        "A correction is acknowledged once committed. sqlite is the default, WAL with `synchronous=NORMAL`: the commit "
        "is in the WAL file, safe from a killed worker or a restarted server, and reaches the disk at the next "
        "checkpoint, so a power cut can lose the last ones. sqlite-full (`DATABASE_URL=sqlite:///...?synchronous=full`)"
        " and PostgreSQL (its default `synchronous_commit=on`) wait for the disk on every commit.",
    ]
    return rows + (["", f"_Note: {r['note']}_"] if r.get("note") else [])


ABUSE_KINDS = {"slow_headers": "slow headers", "slow_bodies": "slow bodies", "idle": "idle", "flood": "flood"}


def abuse(r: dict) -> list[str]:
    a = r["attack"]
    rows = [
        f"For {a['seconds']:.0f} s, {a['slow_headers']} connections send their headers a byte a second, "
        f"{a['slow_bodies']} send their bodies a byte a second, {a['idle']} sit idle, and bursts of {a['flood']} "
        f"connections arrive every {a['flood_every']:.0f} s, each attacker from its own loopback address; a connection "
        "the server closes is opened again at once. Meanwhile one polite client posts the page's canvas request every "
        f"quarter second, and again for a while before and after the attack (after: {r['after_s']:.0f} s, in which "
        "the gevent server replaces each worker the attack left larger, one at a time). The attack is made twice on "
        "the same server: the polite client's figures cover both, and memory is read at the end of each after-period.",
        "",
        "| worker | polite client before: answered, p50 / p99 | during the attack | after | attack connections "
        "opened (closed by the server) | server memory: before / peak / after each attack |",
        "|---|---|---|---|---|---|",
    ]
    for name, d in r["designs"].items():
        stages = [polite(d[stage]) for stage in ("before", "during", "after")]
        opened = ", ".join(
            f"{ABUSE_KINDS[k]} {n:,} ({d['attack']['closed_by_server'].get(k, 0):,})"
            for k, n in d["attack"]["opened"].items()
        )
        m = d["rss_mb"]
        memory = " / ".join(f"{v:,.0f}" for v in (m["before"], m["peak"], *m["after"]))
        rows.append(f"| {name} | {' | '.join(stages)} | {opened} | {memory} MB |")
    return rows


def polite(s: dict) -> str:
    failed = f", **{s['failures']} failed**" if s["failures"] else ""
    times = f"{s['p50_ms']} / {s['p99_ms']} ms" if s["p50_ms"] is not None else "-"
    return f"{s['answered']} of {s['requests']}{failed}, {times}"


def canvas_eval(r: dict) -> list[str]:
    styles = ", ".join(f"{k} {v:.2%}" for k, v in r["by_style"].items())
    return [
        f"Accuracy of `{r['model']['name']}` v{r['model']['version']} on {r['images']:,} canvas re-drawings of "
        f"MNIST test digits: **{r['accuracy']:.2%}** ({styles})."
    ]


def ood_eval(r: dict) -> list[str]:
    sources = list(r["nondigits_per_source"])
    head = [
        "| model | AUROC | refused at its threshold: MNIST test / canvas / held-out non-digits | "
        "as a position of a number | non-digits refused at 1% of MNIST refused | ECE MNIST / canvas | "
        "digits of unseen fonts: refused, accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        f"| `{m['model']['name']}` v{m['model']['version']} | {m['auroc']:.3f} | "
        f"{m['refused_at_threshold']['mnist_test']:.1%} / {m['refused_at_threshold']['canvas']:.1%} / "
        f"{m['refused_at_threshold']['all_nondigits']:.1%} (threshold {m['threshold']:.3g}) | {in_number(m)} | "
        f"{m['nondigits_refused_at_1pct_digits']:.1%} | {m['ece']['mnist_test']:.2%} / {m['ece']['canvas']:.2%} | "
        f"{unseen_fonts(m)} |"
        for m in r["models"]
    ]
    per = ", ".join(f"{name} {n:,}" for name, n in r["nondigits_per_source"].items())
    return [*head, *rows, "", f"Held-out non-digits ({len(sources)} sources): {per}."]


def unseen_fonts(m: dict) -> str:
    """Digits typeset in held-out font families: the share refused, and the accuracy on those accepted; n/a for a
    result from before they were measured."""
    if "unseen_fonts" not in m["refused_at_threshold"]:
        return "n/a"
    return f"{m['refused_at_threshold']['unseen_fonts']:.1%}, {m['accuracy_of_accepted']['unseen_fonts']:.1%}"


def in_number(m: dict) -> str:
    """The same three shares at the threshold for a position of a number; a result from before it: n/a."""
    r = m.get("refused_in_number")
    if not r:
        return "n/a"
    return f"{r['mnist_test']:.1%} / {r['canvas']:.1%} / {r['all_nondigits']:.1%}"


NUMBER_GROUPS = (("by_length", "{} digits"), ("by_gap", "gap: {}"), ("by_medium", "medium: {}"))


def numbers_eval(r: dict) -> list[str]:
    lines = [
        f"`{r['model']['name']}` v{r['model']['version']} read **{r['number_accuracy']:.2%}** of {r['numbers']:,} "
        f"numbers of 2 to 6 MNIST test digits whole, and {r['digit_accuracy']:.2%} of their digits; "
        f"{r['wrong_count']:,} answers had the wrong count of digits (all of such a number's digits count as wrong). "
        f"With each digit drawn and read alone, {r['alone_number_accuracy']:.2%} of the numbers and "
        f"{r['alone_digit_accuracy']:.2%} of the digits are read right: what finding every digit exactly would give.",
        "",
        "| numbers | count | read whole | digits read right | wrong count of digits | digits alone: read whole |",
        "|---|---|---|---|---|---|",
        numbers_row("all", r),
    ]
    lines += [numbers_row(label.format(k), v) for group, label in NUMBER_GROUPS for k, v in r[group].items()]
    if not r["answers_with_number"]:
        lines += ["", "The service read one digit per image when this was measured: its answers had no `number`."]
    return lines


def numbers_row(label: str, t: dict) -> str:
    return (
        f"| {label} | {t['numbers']:,} | {t['number_accuracy']:.2%} | {t['digit_accuracy']:.2%} | "
        f"{t['wrong_count']:,} | {t['alone_number_accuracy']:.2%} |"
    )


def image_headline(r: dict) -> str:
    i = r["images"]["runtime"]
    return (
        f"- Docker image: **{i['added_mb']:,} MB** on top of its `{r['base']}` base, no TensorFlow; in the container "
        f"it is ready **{i['ready_s']} s** after it starts and uses **{i['memory_load_peak_mb']:,.0f} MB** under load."
    )


def deployment_block() -> str:
    """The README's deployment figures: the default image's size, start and memory, and how they were measured."""
    r = load("image")
    if not r:
        return "_Not measured yet: `python -m bench.image`._"
    i, other = r["images"]["runtime"], r["images"].get("savedmodel")
    savedmodel = f" (the `savedmodel` image, with TensorFlow: {other['added_mb']:,} MB)" if other else ""
    return (
        f"The default image adds **{i['added_mb']:,} MB** to its `{r['base']}` base{savedmodel}. In the container it "
        f"is ready **{i['ready_s']} s** after it starts, and uses **{i['memory_ready_mb']:,.0f} MB** of memory when "
        f"ready, **{i['memory_load_peak_mb']:,.0f} MB** at most under load ({i['load']['rps']:,.0f} requests/s, "
        f"{i['load']['connections']} connections). {image_method(r)}{busy(r)} {provenance('image')}"
    )


def image_method(r: dict) -> str:
    i = r["images"]["runtime"]
    return (
        "`python -m bench.image` builds the image with podman (`../shared/tools/oci-build`) and runs it as CI does: "
        f"`{r['settings']}`, its own uid. Ready: from the container's start (podman's `StartedAt`) to the first 200 "
        f"from `/readyz`, the median of {len(i['ready_runs_s'])} fresh containers. Memory: `podman stats` while wrk "
        f"sends canvas drawings for {i['load']['seconds']:.0f} s."
    )


def image(r: dict) -> list[str]:
    rows = [
        "| image | size | adds to its base | start to ready: median (each start) | memory: ready / peak under load / "
        "after | the load: requests/s, errors, p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for name, i in r["images"].items():
        load = i["load"]
        rows.append(
            f"| `{name}` | {i['size_mb']:,} MB | **{i['added_mb']:,} MB** | **{i['ready_s']} s** "
            f"({', '.join(map(str, i['ready_runs_s']))}) | {i['memory_ready_mb']:,.0f} / "
            f"**{i['memory_load_peak_mb']:,.0f}** / {i['memory_after_load_mb']:,.0f} MB | {load['rps']:,.0f}, "
            f"{load['errors']}, {load['p50_ms']:.1f} / {load['p99_ms']:.1f} ms |"
        )
    return [
        *rows,
        "",
        f"The base here is oci-build's stand-in for `{r['base']}` (Debian's Python 3.11 on a minimal bookworm), "
        f"{r['base_mb']:,} MB where the official image is about 130 MB, so what the Dockerfile adds is the figure "
        f"to compare. {image_method(r)}{busy(r)}",
    ]


def busy(r: dict) -> str:
    """The shared machine's 1-minute load average when the run began and ended. Above its core count when it began,
    timings are provisional (the end figure includes the benchmark's own load test)."""
    if "load_average" not in r:
        return ""
    cores = (r.get("machine") or {}).get("cores") or 1
    before, after = r["load_average"]
    text = f" The machine's load average was {before} when the run began and {after} when it ended ({cores} cores)"
    return text + (": other work was running, so the times are provisional." if before > cores else ".")


# ---- the two documents --------------------------------------------------------------------------------------------

BLOCKS: dict[Path, dict[str, Callable[[], str]]] = {
    README: {
        "headline": headline_block,
        "models-table": lambda: table(ROOT / "models"),
        "deployment": deployment_block,
    },
    REPORT: {
        "results-index": index_block,
        "performance": with_provenance("serve_bench", performance),
        "request-parts": with_provenance("request_parts", request_parts),
        "batch-parts": with_provenance("request_parts", batch_parts),
        "runtime-batches": with_provenance("runtime_batches", runtime_batches),
        "soak": with_provenance("soak", soak),
        "faults": with_provenance("faults", faults),
        "abuse": with_provenance("abuse", abuse),
        "corrections": with_provenance("corrections", corrections),
        "canvas-eval": with_provenance("canvas_eval", canvas_eval),
        "numbers-eval": with_provenance("numbers_eval", numbers_eval),
        "ood-eval": with_provenance("ood_eval", ood_eval),
        "image": with_provenance("image", image),
    },
}


def render(text: str, blocks: dict[str, Callable[[], str]]) -> str:
    """`text` with each block's body replaced by what its function makes now."""
    for name, make in blocks.items():
        pattern = re.compile(rf"(<!-- {name}:[^\n]*-->\n)(.*?)(<!-- /{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"no block {name!r}")
        text = pattern.sub(lambda m, make=make: m.group(1) + make().rstrip() + "\n" + m.group(3), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from its sources")
    args = parser.parse_args(argv)
    stale = []
    for path, blocks in BLOCKS.items():
        current = path.read_text()
        fresh = render(current, blocks)
        if fresh != current:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        print(f"stale: {', '.join(map(str, stale))}: run python -m bench.readme", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
