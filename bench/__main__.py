"""``python -m bench`` (``make bench``): run the benchmark suites, print a table, update bench/results.json.

    python -m bench                          # every suite, 3 repeats (medians)
    python -m bench --suite reference        # one suite; the others' figures in results.json are kept
    python -m bench --quick                  # 1 repeat, shorter runs (a smoke test of the figures)
    python -m bench --profile                # pyinstrument profile of a mid-size run instead
    python -m bench --markdown               # the figures in bench/results.json as Markdown tables

Suites: ``scale`` (full scale, population scaling, case scaling), ``reference`` (the model vs the plain
Mesa implementation in bench/reference.py at equal work), ``experiments`` (bench/experiments_bench.py),
``startup`` (command start-up against the imports it cannot avoid, bench/startup.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.scale import (
    BEFORE_COMMIT,
    ROOT,
    code_version,
    machine_info,
    profile_run,
    reference_suite,
    scale_suite,
)

RESULTS = ROOT / "bench" / "results.json"
SUITES = ("scale", "reference", "experiments", "startup")


def _fmt(v: Any, digits: int = 1) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:,.{digits}f}" if abs(v) >= 10 or digits == 0 else f"{v:,.{digits + 1}f}"
    return str(v)


def runs_table(title: str, runs: list[dict[str, Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("run", "impl", "citizens", "days", "cases/day", "wall s", "cpu s", "process s", "peak MiB",
                "cases/s", "closed/s", "citizen-h/s", "load", "repeats"):
        t.add_column(col, justify="left" if col in ("run", "impl") else "right")
    for r in runs:
        if r.get("error"):
            t.add_row(r["label"], r["kind"], *["—"] * 11, f"failed: {r['error']}")
            continue
        t.add_row(r["label"], r["kind"], _fmt(r["population"]), _fmt(r["days"], 0), _fmt(r["cases_per_day"], 0),
                  _fmt(r["wall_s"]), _fmt(r["work_cpu_s"]), _fmt(r["process_s"]), _fmt(r["peak_rss_mib"], 0), _fmt(r["cases_per_s"], 0),
                  _fmt(r["closed_per_s"], 0), f"{r['citizen_hours_per_s']:,.3g}", _fmt(r.get("load_before", float("nan")), 0),
                  f"{r['repeats']}" + ("" if r.get("deterministic", True) else " (!)"))
    return t


def checks_table(title: str, checks: dict[str, dict[str, Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("figure", "value", "target", "met", "note"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for name, c in checks.items():
        t.add_row(name, _fmt(c.get("value"), 2), str(c.get("target", "")), _fmt(bool(c.get("ok"))),
                  str(c.get("note", "")))
    return t


def flat_table(title: str, data: dict[str, Any]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("key")
    t.add_column("value")

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                walk(f"{prefix}[{i}]", x)
        else:
            t.add_row(prefix, _fmt(v, 2))

    walk("", data)
    return t


def run_experiments(quick: bool, console: Console) -> dict[str, Any] | None:
    try:
        from bench.experiments_bench import run_benchmark
    except ModuleNotFoundError as exc:
        if exc.name != "bench.experiments_bench":
            raise
        console.print("[yellow]experiments suite skipped: bench/experiments_bench.py is not there yet[/]")
        return None
    return run_benchmark(quick=quick)


def merge_results(path: Path, new: dict[str, dict[str, Any]], machine: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` (if any), replace the suites just run, keep the others; returns the merged document."""
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            doc = {}
    if not isinstance(doc, dict):
        doc = {}
    doc.setdefault("suites", {})
    doc["suites"].update(new)
    doc["updated"] = dt.datetime.now().isoformat(timespec="seconds")
    doc["machine"] = machine
    path.write_text(json.dumps(doc, indent=2, default=str, allow_nan=True) + "\n")
    return doc


def markdown(doc: dict[str, Any]) -> str:
    """The figures of a results document as Markdown tables (for the README)."""
    out = []
    m = doc.get("machine", {})
    out.append(f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB, "
               f"{m.get('os', '')}, Python {m.get('python', '?')}, "
               + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()) + ".")
    for name, suite in doc.get("suites", {}).items():
        code = suite.get("code", {})
        out.append(f"\n**{name}** — {suite.get('date', '?')}, commit {code.get('commit', '?')}"
                   f"{' (sim/ modified)' if code.get('sim_modified') else ''}, "
                   f"{'quick, ' if suite.get('quick') else ''}medians of {suite.get('repeats', '?')} repeat(s)\n")
        if "runs" in suite:
            out.append("| run | citizens | days | cases/day | wall s | CPU s | peak MiB | cases/s | citizen-hours/s "
                       "| load |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in suite["runs"]:
                if r.get("error"):
                    out.append(f"| {r['label']} | failed: {r['error']} |||||||||")
                    continue
                out.append(f"| {r['label']} | {r['population']:,} | {r['days']:g} | {r['cases_per_day']:,.0f} | "
                           f"{r['wall_s']:.1f} | {r['work_cpu_s']:.1f} | {r['peak_rss_mib']:,.0f} | "
                           f"{r['cases_per_s']:,.0f} | {r['citizen_hours_per_s']:.3g} | "
                           f"{r.get('load_before', float('nan')):.1f} |")
            out.append("\n| figure | value | target | met |")
            out.append("|---|---:|---|---|")
            for k, c in suite.get("checks", {}).items():
                out.append(f"| {k} | {_fmt(c.get('value'), 2)} | {c.get('target', '')} | {_fmt(bool(c.get('ok')))} |")
        elif "median_s" in suite:
            out.append("| command | median wall s |")
            out.append("|---|---:|")
            out += [f"| {k} | {v:.3f} |" for k, v in suite["median_s"].items()]
            out.append("\n| figure | value | target | met |")
            out.append("|---|---:|---|---|")
            for k, c in suite.get("checks", {}).items():
                out.append(f"| {k} | {_fmt(c.get('value'), 2)} | {c.get('target', '')} | {_fmt(bool(c.get('ok')))} |")
        else:
            out.append("| key | value |")
            out.append("|---|---|")
            for k, v in suite.items():
                if k not in ("machine", "code") and not isinstance(v, dict | list):
                    out.append(f"| {k} | {_fmt(v, 2)} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=(*SUITES, "all"), action="append",
                    help="suite to run (repeatable; default all)")
    ap.add_argument("--quick", action="store_true", help="1 repeat and shorter runs")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per run (default 3, --quick 1)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a single run is stopped")
    ap.add_argument("--ref-population", type=int, default=None, help="citizens in the reference comparison")
    ap.add_argument("--ref-days", type=float, default=None, help="days in the reference comparison")
    ap.add_argument("--before", default=BEFORE_COMMIT, metavar="COMMIT",
                    help=f"commit the full-scale year is timed against, in turns (default {BEFORE_COMMIT}; "
                         "'none' to skip)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file (merged, default bench/results.json)")
    ap.add_argument("--profile", action="store_true", help="profile a mid-size run with pyinstrument instead")
    ap.add_argument("--profile-html", default=None, help="also write the profile as HTML to this path")
    ap.add_argument("--markdown", action="store_true", help="print the figures in --out as Markdown, run nothing")
    args = ap.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: keep the tables readable
        console = Console(width=170)

    if args.markdown:
        if not args.out.exists():
            console.print(f"no results yet: {args.out} (run python -m bench first)")
            return 2
        print(markdown(json.loads(args.out.read_text())))
        return 0
    if args.profile:
        console.print(profile_run(html=args.profile_html), markup=False, highlight=False)
        return 0

    chosen = args.suite or ["all"]
    suites = list(SUITES) if "all" in chosen else [s for s in SUITES if s in chosen]
    machine = machine_info()
    console.print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
                  f"Python {machine['python']}, " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    log = console.log
    new: dict[str, dict[str, Any]] = {}
    stamp = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine, "code": code_version()}
    for suite in suites:
        if suite == "scale":
            before = None if args.before.lower() == "none" else args.before
            res = scale_suite(args.quick, args.repeats, args.timeout, log=log, before=before)
        elif suite == "reference":
            res = reference_suite(args.quick, args.repeats, args.timeout, args.ref_population, args.ref_days, log=log)
        elif suite == "startup":
            from bench.startup import startup_suite

            res = startup_suite(args.quick, args.repeats, log=log)
        else:
            res = run_experiments(args.quick, console)
            if res is None:
                continue
        new[suite] = {**stamp, **res}
        if "runs" in res:
            console.print(runs_table(f"{suite} — medians of {res.get('repeats')} repeat(s)", res["runs"]))
            console.print(checks_table(f"{suite} — targets", res["checks"]))
        else:
            console.print(flat_table(suite, res))
    if new:
        merge_results(args.out, new, machine)
        console.print(f"wrote {args.out} (suites: {', '.join(new)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
