#!/usr/bin/env python3
"""Wenzheng (问政) command line. ``python run.py --help`` lists the commands.

Thin by design: parse arguments, call into ``sim``, ``experiments`` and ``analysis``, print.
With no command it runs the main job: the flagship reform experiment and its report.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

MAIN_SPEC = "experiments/reforms.yaml"
MAIN_OUT = "results/reforms"
MAIN_REPLICATIONS = 10  # the flagship, shortened: intervals still separate the main effects
MAIN_DAYS = 120


def _console():
    from rich.console import Console

    return Console()


def _kpi_table(title: str, summary: dict[str, float]):
    from rich.table import Table

    from sim import KPI_UNITS

    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, value in summary.items():
        table.add_row(name, f"{value:,.3f}" if value == value else "n/a", KPI_UNITS.get(name, ""))
    return table


def _kpi_text(title: str, summary: dict[str, float]) -> str:
    """The KPIs as plain aligned text (name, value, unit; one line each), for output read by a program."""
    from sim import KPI_UNITS

    rows = [(name, f"{value:,.3f}" if value == value else "n/a", KPI_UNITS.get(name, ""))
            for name, value in summary.items()]
    wide = [max((len(r[i]) for r in rows), default=0) for i in (0, 1)]
    return "\n".join([title, *(f"{n:<{wide[0]}}  {v:>{wide[1]}}  {u}".rstrip() for n, v, u in rows)])


def _started() -> None:
    """Start-up is over (imports done, inputs read): when run as a script, the garbage collector was off during
    it (:data:`__main__` block); the objects made so far live as long as the process, so they are frozen (no
    later collection looks at them again) and collections resume for the work. A no-op when collections are
    on (``main`` called from Python)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def cmd_run(args: argparse.Namespace) -> int:
    from experiments.single import run_to_dir
    from sim import load_scenario

    scenario = load_scenario(args.scenario, args.set)
    _started()
    seed = scenario.run.seed if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path("results/runs") / f"{scenario.name}-{seed}"
    if sys.stderr.isatty():  # a progress bar for a person watching; nothing (and no import) otherwise
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"{scenario.name} (seed {seed})", total=1.0)
            result = run_to_dir(scenario, out, seed=seed, days=args.days,
                                progress=lambda share: bar.update(task, completed=share))
    else:
        result = run_to_dir(scenario, out, seed=seed, days=args.days)
    title = f"{scenario.name}, seed {seed}: {result.n_cases:,} cases"
    done = f"wrote {out}/cases.parquet, timeseries.parquet, groups.parquet, summary.json"
    if not sys.stdout.isatty():  # read by a program or kept in a file: plain lines (and no rich import)
        print(_kpi_text(title, result.summary), done, sep="\n")
        return 0
    console = _console()
    console.print(_kpi_table(title, result.summary))
    console.print(done)
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from experiments.runner import run_experiment

    outcome = run_experiment(args.spec, out=args.out, workers=args.workers, engine=args.engine,
                             scheduler=args.scheduler, resume=args.resume, replications=args.replications,
                             days=args.days)
    console = _console()
    console.print(outcome.render_table())
    console.print(f"store: {outcome.store_dir}  ({outcome.n_ok} ok, {outcome.n_failed} failed, "
                  f"{outcome.n_skipped} already done)")
    if outcome.n_failed:
        console.print(f"[red]{outcome.n_failed} run(s) failed; see runs.parquet (status, error)[/red]")
        return 1
    return 0


def cmd_optimise(args: argparse.Namespace) -> int:
    from experiments.optimise import run_optimisation

    outcome = run_optimisation(args.spec, out=args.out, evaluations=args.evaluations,
                               replications=args.replications, days=args.days, workers=args.workers,
                               engine=args.engine, scheduler=args.scheduler, resume=args.resume)
    r = outcome.result
    print(f"front: {len(r['front'])} package(s); "
          + ("some meet every target" if r["any_feasible"] else "none meets every target"))
    if r["chosen"] is not None:
        print(f"chosen: package {r['chosen']} ({r['chosen_rule']})")
    print(f"packages no worse than {r['compare']} on every objective and cheaper: "
          + (", ".join(map(str, r["beats_compare"])) or "none"))
    print(f"store: {outcome.store_dir}  ({outcome.n_runs} runs ok, {outcome.n_failed} failed, "
          f"{outcome.wall_s:.0f} s); report: python run.py report {outcome.store_dir}")
    return 1 if outcome.n_failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from experiments.export import export_store

    path = export_store(args.store, fmt=args.format, out=args.out)
    print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report
    from experiments.optimise import is_optimisation_store

    if is_optimisation_store(args.store):
        from analysis.optimise_report import write_optimisation_report as write_report
    paths = write_report(args.store)
    print(f"report: {paths['html']}\nmarkdown: {paths['md']}")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from analysis.discover import discover, write_discovery

    prim = {k: v for k, v in (("threshold", args.threshold), ("peel_alpha", args.peel_alpha),
                              ("mass_min", args.mass_min)) if v is not None}  # else discover's defaults
    found = discover(args.store, args.kpi, below=args.below, above=args.above, scenario=args.scenario,
                     versus=args.versus, **prim)
    paths = write_discovery(found, out=args.out)
    print(found.render())
    print(f"wrote {paths['html']} (and discovery.json, discovery.md, peeling.csv, points.csv, figures/)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from analysis.validation import run_validation

    if args.gate:
        from analysis.gate import GATE_FILE, run_gate

        results, findings, wall = run_gate(record=args.record, workers=args.workers,
                                           say=lambda m: print(m, file=sys.stderr))
        for r in results:
            print(f"{r.target.key:16s} {r.target.role:12s} mean {r.mean:.4g}  {'pass' if r.passed else 'FAIL'}")
        if args.record:
            print(f"recorded {GATE_FILE} ({wall:.0f} s)")
            return 0
        for f in findings:
            print(f"GATE {f.key}: {f.what}")
        print(f"gate: {'passed' if not findings else f'{len(findings)} finding(s)'} ({wall:.0f} s)")
        return 1 if findings else 0
    outcome = run_validation(out=args.out, replications=args.replications, workers=args.workers,
                             posterior=args.posterior, draws=args.draws)
    print(outcome.render())
    print(f"report: {outcome.html}")
    return 0 if outcome.all_passed else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from experiments.calibration import calibrate

    outcome = calibrate(args.spec, out=args.out, workers=args.workers)
    print(outcome.describe())
    print(f"wrote {outcome.scenario_path}")
    return 0


def cmd_calibrate_abc(args: argparse.Namespace) -> int:
    from experiments.abc import run_abc

    outcome = run_abc(args.spec, resume=args.resume, workers=args.workers,
                      log=(lambda _msg: None) if args.quiet else print)
    print(outcome.render())
    print(f"wrote {outcome.out}/ (posterior.json, posterior.csv, prior_predictive.csv, report.md, history.db)")
    return 0


def cmd_calibrate_from_log(args: argparse.Namespace) -> int:
    from experiments.logfit import calibrate_from_log, parse_columns

    fit = calibrate_from_log(args.log, parse_columns(args.columns), out=args.out, date_format=args.date_format,
                             hourly=args.hourly, top_categories=args.top_categories, days=args.days)
    print(fit.describe())
    print(f"wrote {args.out}")
    return 0


def cmd_plan_staff(args: argparse.Namespace) -> int:
    from sim.budgets import write_staff_plan

    path, staff = write_staff_plan(args.scenario, args.utilisation, args.out, args.set)
    print(f"planned {sum(staff.values()):,} department staff in {len(staff)} departments at utilisation "
          f"{args.utilisation:g} (largest: {max(staff.values())}, smallest: {min(staff.values())})")
    print(f"wrote {path}")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from sim import load_scenario

    load_scenario(args.scenario)  # fail early, with a clear message, on a bad file
    env = dict(os.environ, WENZHENG_SCENARIO=str(Path(args.scenario).resolve()))
    cmd = [sys.executable, "-m", "solara", "run", str(Path(__file__).with_name("app.py")),
           "--host", args.host, "--port", str(args.port), "--production"]
    return subprocess.call(cmd, env=env)


def cmd_main_job(args: argparse.Namespace) -> int:
    import time

    from analysis.report import write_report
    from analysis.summarize import summary_text
    from experiments.runner import run_experiment
    from experiments.store import StoreError

    out = Path(MAIN_OUT)
    kwargs = dict(out=str(out), workers=args.workers, replications=MAIN_REPLICATIONS, days=MAIN_DAYS)
    try:
        outcome = run_experiment(MAIN_SPEC, resume=(out / "manifest.json").exists(), **kwargs)
    except StoreError as exc:
        if "spec" not in str(exc):
            raise
        # the store was written by another version of the spec: keep it, start a fresh one
        kept = out.with_name(f"{out.name}-previous-{time.strftime('%Y%m%d-%H%M%S')}")
        out.rename(kept)
        print(f"note: {out} came from a different spec; kept as {kept}", file=sys.stderr)
        outcome = run_experiment(MAIN_SPEC, resume=False, **kwargs)
    console = _console()
    console.print(summary_text(outcome.store_dir))
    paths = write_report(outcome.store_dir)
    console.print(f"{outcome.n_ok} runs ok, {outcome.n_failed} failed")
    console.print(f"report: {paths['html']}")
    return 1 if outcome.n_failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py", description="Wenzheng (问政): simulate citizens and governments on an online inquiry "
        "platform. With no command: run the flagship reform experiment and write its report under results/.")
    p.add_argument("--workers", type=int, default=None, help="worker processes for the main job (default: CPUs)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run one scenario and write its cases, time series and KPIs")
    r.add_argument("scenario", help="scenario YAML file, e.g. scenarios/zzic.yaml")
    r.add_argument("--days", type=float, help="simulated days (overrides run.days)")
    r.add_argument("--seed", type=int, help="random seed (overrides run.seed)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. policy.response_mandate_hours=24 (repeatable)")
    r.add_argument("--out", help="output folder (default results/runs/<scenario>-<seed>/)")
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("experiment", help="run an experiment spec (many paired runs) into a result store")
    e.add_argument("spec", help="experiment spec YAML, e.g. experiments/reforms.yaml")
    e.add_argument("--out", help="store folder (default results/experiments/<spec>/)")
    e.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    e.add_argument("--engine", choices=["local", "dask"], default="local", help="local process pool or Dask")
    e.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    e.add_argument("--resume", action="store_true", help="run only the runs missing from the store")
    e.add_argument("--replications", type=int, help="override the spec's replications")
    e.add_argument("--days", type=float, help="override the spec's simulated days")
    e.set_defaults(func=cmd_experiment)

    o = sub.add_parser("optimise", help="search for the cheapest package of levers that meets the targets "
                       "(multi-objective, NSGA-II, paired replications; resumable)")
    o.add_argument("spec", help="optimisation spec YAML, e.g. experiments/optimise.yaml")
    o.add_argument("--out", help="store folder (default results/optimise/<spec>/)")
    o.add_argument("--evaluations", type=int, help="packages to evaluate (override the spec)")
    o.add_argument("--replications", type=int, help="replications per package and case (override the spec)")
    o.add_argument("--days", type=float, help="measured days per run (override the spec)")
    o.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    o.add_argument("--engine", choices=["local", "dask"], default="local", help="local process pool or Dask")
    o.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    o.add_argument("--resume", action="store_true", help="go on from the store (replays the stored generations)")
    o.set_defaults(func=cmd_optimise)

    x = sub.add_parser("export", help="export a result store as a tidy CSV (BehaviorSpace table layout)")
    x.add_argument("store", help="result store folder")
    x.add_argument("--format", choices=["csv"], default="csv")
    x.add_argument("--out", help="output file (default <store>/export.csv)")
    x.set_defaults(func=cmd_export)

    rp = sub.add_parser("report", help="write report.html and report.md for a result store")
    rp.add_argument("store", help="result store folder")
    rp.set_defaults(func=cmd_report)

    dc = sub.add_parser("discover", help="scenario discovery (PRIM): where in a store's design a KPI, or a "
                        "scenario's paired effect on it, falls below or rises above a value")
    dc.add_argument("store", help="result store folder of an experiment with a design")
    dc.add_argument("--kpi", required=True, help="KPI, e.g. true_resolution_rate")
    dc.add_argument("--below", type=float, help="cases of interest: y below this value (the KPI's unit, shares 0–1)")
    dc.add_argument("--above", type=float, help="cases of interest: y above this value")
    dc.add_argument("--scenario", help="scenario S (default: the first that is not the baseline)")
    dc.add_argument("--versus", help="scenario B that S is paired with, y = S − B (default: the baseline)")
    dc.add_argument("--out", help="output folder (default <store>/discovery/<kpi>-<below|above>-<X>/)")
    dc.add_argument("--threshold", type=float, help="density a chosen box must reach, 0–1 (default 0.8)")
    dc.add_argument("--peel-alpha", type=float, help="share of points peeled per step (default 0.05)")
    dc.add_argument("--mass-min", type=float, help="smallest box, share of all points (default 0.05)")
    dc.set_defaults(func=cmd_discover)

    v = sub.add_parser("validate", help="run the calibration targets T1–T8 and the verification checks")
    v.add_argument("--out", default="results/validation", help="output folder")
    v.add_argument("--replications", type=int, help="replications per target (default from the targets)")
    v.add_argument("--workers", type=int, help="worker processes")
    v.add_argument("--posterior", help="a calibrate-abc posterior.json: run every target over draws from it "
                   "(predictive intervals with parameter uncertainty)")
    v.add_argument("--draws", type=int, default=20, help="posterior draws per target scenario (default 20)")
    v.add_argument("--gate", action="store_true", help="the quick gate: compare with tests/validation_gate.json")
    v.add_argument("--record", action="store_true", help="with --gate: write the record instead of comparing")
    v.set_defaults(func=cmd_validate)

    c = sub.add_parser("calibrate", help="fit parameters to targets; writes a scenario that extends the input")
    c.add_argument("spec", help="calibration spec YAML")
    c.add_argument("--out", help="output scenario file")
    c.add_argument("--workers", type=int, help="worker processes")
    c.set_defaults(func=cmd_calibrate)

    ab = sub.add_parser("calibrate-abc", help="Bayesian calibration (ABC-SMC, pyabc) of behavioural parameters to "
                        "the calibration targets; writes a weighted posterior sample and a report")
    ab.add_argument("spec", help="ABC spec YAML, e.g. experiments/posterior.yaml")
    ab.add_argument("--resume", action="store_true", help="continue from the spec's history.db")
    ab.add_argument("--workers", type=int, help="worker processes (default: up to 2)")
    ab.add_argument("--quiet", action="store_true", help="no progress lines")
    ab.set_defaults(func=cmd_calibrate_abc)

    lg = sub.add_parser("calibrate-from-log", help="build a scenario from a city's service-request log (CSV)")
    lg.add_argument("log", help="CSV export of work orders")
    lg.add_argument("--columns", required=True,
                    help="role=column pairs: created=…,closed=…,due=…,category=…,channel=…,agency=…")
    lg.add_argument("--date-format", help="strptime format of the date columns (inferred when omitted)")
    lg.add_argument("--hourly", action="store_true", help="trust the clock times: fit the hour-of-day profile")
    lg.add_argument("--top-categories", type=int, default=10, help="categories kept; the rest are pooled")
    lg.add_argument("--days", type=float, help="simulated days of the written scenario (default: the log's span, "
                    "at most 365)")
    lg.add_argument("--out", required=True, help="scenario file to write, e.g. scenarios/mycity.yaml")
    lg.set_defaults(func=cmd_calibrate_from_log)

    ps = sub.add_parser("plan-staff", help="staff each department for its expected load; writes a scenario that "
                        "extends the input with departments.staff_by_department")
    ps.add_argument("scenario", help="scenario YAML file, e.g. scenarios/default.yaml")
    ps.add_argument("--utilisation", type=float, required=True,
                    help="target share of staff time busy with the expected load, in (0, 1], e.g. 0.6")
    ps.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scenario value for planning only (repeatable; not written to the output)")
    ps.add_argument("--out", required=True, help="scenario file to write, e.g. scenarios/mycity_staffed.yaml")
    ps.set_defaults(func=cmd_plan_staff)

    ex = sub.add_parser("explore", help="open the interactive explorer (Solara) on a scenario")
    ex.add_argument("scenario", nargs="?", default="scenarios/default.yaml")
    ex.add_argument("--host", default="127.0.0.1")
    ex.add_argument("--port", type=int, default=8765)
    ex.set_defaults(func=cmd_explore)
    return p


def main(argv: list[str] | None = None) -> int:
    from sim.errors import WenzhengError

    args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_main_job)
    if func is not cmd_run:  # only `run` keeps collections off through its imports (see _started)
        _started()
    try:
        return func(args)
    except WenzhengError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs are kept in the store (use --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Start-up (importing Mesa, pandas, pydantic; reading the scenario) makes long-lived objects only, and a
    # collection pass over them finds nothing: collections stay off until the command has started its work
    # (_started). At exit the objects are frozen, so the interpreter's final collection does not walk them all
    # again: every file is closed by then, and the process ends as soon as its work is done.
    gc.disable()
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)
