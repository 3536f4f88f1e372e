"""A city's own log → a scenario that reproduces its process (``python run.py calibrate-from-log``).

Planners hold CSV exports of their hotline's work orders (311 in the US, 12345 in China). This module reads
such an export, whatever its column names (the user maps them to the roles ``created``, ``closed``, ``due``,
``category``, ``channel`` and ``agency``; only ``created`` is required), and writes a scenario YAML that sets:

- ``demand.requests_per_day`` (rows with a usable created date ÷ calendar days the log spans) and
  ``demand.weekday_weights`` (arrivals per Monday … Sunday, relative to the mean day);
  ``demand.hour_weights`` by hour of day only with ``hourly=True`` (when the clock times can be trusted),
  flat otherwise;
- the category mix: the ``top_categories`` most frequent values of the category column, the rest pooled
  into ``other``;
- ``citizens.channel_mix``: the log's channel values mapped to online / hotline / offline (phone-like →
  hotline; web, app, e-mail, API, online → online; everything else, e.g. walk-in, internal, mail → offline);
- per category a lognormal service time fitted to the created→closed durations (hours), and the due time
  (``deadline_hours``, elapsed hours after creation) from the due column;
- every behavioural mechanism switched off (no reporting choice, no intake queue, no dispatch delay, no
  misrouting, no effort choice, no call-back, no supervision, no systemic fixes, enough staff that no queue
  forms), so that running the scenario reproduces the log's process: time to close = service time.

Dates: parsed with the user's ``date_format`` (``strptime`` codes) or with a format inferred per column from
a list of common layouts (ISO 8601, US ``MM/DD/YYYY``, European ``DD/MM/YYYY`` and ``DD.MM.YYYY``, with or
without clock times). Rows with missing or impossible dates are counted per reason and reported, never
silently dropped: a row without a usable created date is not used at all; a row without a usable close date
(still open, unparseable, or closed before it was created) counts as an arrival but not as a service time; a
row without a usable due date counts in everything except the due-date figures.

The lognormal fit. Exports record many closes at the very second of creation (work logged after the fact,
duplicates closed on sight); a lognormal cannot put mass at zero, so durations under one minute are
treated as "at most one minute" (left-censored). Each category's ``(mu, sigma)`` is chosen to minimise the
Cramér–von Mises distance between the lognormal and the empirical distribution of log hours, subject to one
constraint when the category has due dates: the lognormal's probability of closing within ``deadline_hours``
equals the category's observed share closed by its due date. The two figures a planner checks first — the
median time to close and the share closed on time — are thereby both reproduced, and the fit quality is
reported (Kolmogorov–Smirnov statistic; fitted vs. empirical median and 90th percentile). The due time of a
category is the median of due − created when that is (nearly) constant within the category; when it varies
(a pooled ``other`` category, or due dates counted in working days) the model's single elapsed-hour due time
is set to the "equivalent" one — the empirical quantile of the category's durations at its on-time share —
so that the category's on-time share is kept (the median due time is reported alongside).

Units: durations and due times in hours; shares 0–1; arrivals per day.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import optimize, special

from sim.errors import WenzhengError

#: The roles a user maps to the log's columns (``created`` is required).
ROLES: tuple[str, ...] = ("created", "closed", "due", "category", "channel", "agency")
REQUIRED_ROLES: tuple[str, ...] = ("created",)
DATE_ROLES: tuple[str, ...] = ("created", "closed", "due")

#: Durations below this are read as "closed on creation" and treated as left-censored (hours; one minute).
FLOOR_H: float = 1.0 / 60.0
#: Fewer closed durations than this in a category: its service time is the fit of the whole log.
MIN_FIT_ROWS: int = 10
#: A category's due time counts as constant when this share of its due times lies within 1% of the median.
CONSTANT_DUE_SHARE: float = 0.9
#: Shape bounds of the fit (the scenario allows sigma in 0–5).
SIGMA_MIN, SIGMA_MAX = 0.05, 5.0
#: Staff per bureau are set so that the chance that all are busy is below this (M/G/∞ occupancy is Poisson).
SATURATION_RISK: float = 1e-6
#: Most order statistics the distance is computed on (larger logs are summarised by evenly spaced quantiles).
MAX_FIT_POINTS: int = 4000
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_DATE_FORMATS: tuple[str, ...] = (
    "ISO8601",
    "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%m/%d/%y %H:%M", "%m/%d/%y",
)

_ONLINE_WORDS = frozenset({
    "web", "website", "www", "internet", "online", "app", "apps", "application", "api", "email", "portal",
    "chat", "sms", "text", "twitter", "facebook", "social", "wechat", "weibo", "selfservice", "digital",
    "form", "webform", "ios", "android", "smartphone", "mobileapp", "open311", "seeclickfix", "mobile",
})
_HOTLINE_WORDS = frozenset({"phone", "telephone", "tel", "call", "calls", "caller", "hotline", "ivr", "voice",
                            "callcenter", "voicemail", "12345", "311"})
_STRONG_ONLINE = _ONLINE_WORDS - {"mobile", "311"}


class LogError(WenzhengError):
    """A work-order log or its column mapping cannot be used. The message names the file and the column."""


# ----------------------------------------------------------------------------------------- columns
def parse_columns(text: str) -> dict[str, str]:
    """Parse ``--columns created=CreatedDate,closed=CloseDate,...`` into ``{role: column}``.

    Roles are those in :data:`ROLES`; ``created`` is required. Column names keep inner spaces.
    """
    if text is None or not str(text).strip():
        raise LogError(f"--columns: empty; expected role=column pairs separated by commas, e.g. "
                       f"created=CreatedDate,closed=CloseDate (roles: {', '.join(ROLES)})")
    out: dict[str, str] = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise LogError(f"--columns: {item!r} must look like role=column (roles: {', '.join(ROLES)})")
        role, column = (s.strip() for s in item.split("=", 1))
        role = role.lower()
        if role not in ROLES:
            hint = difflib.get_close_matches(role, ROLES, n=1)
            raise LogError(f"--columns: unknown role {role!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                           + f"; roles are: {', '.join(ROLES)}")
        if not column:
            raise LogError(f"--columns: role {role!r} has an empty column name")
        if role in out:
            raise LogError(f"--columns: role {role!r} given twice ({out[role]!r} and {column!r})")
        out[role] = column
    return _check_roles(out, "--columns")


def _check_roles(columns: dict[str, str], source: str) -> dict[str, str]:
    if not isinstance(columns, dict):
        raise LogError(f"{source}: expected a mapping role -> column, got {type(columns).__name__}")
    unknown = sorted(set(columns) - set(ROLES))
    if unknown:
        raise LogError(f"{source}: unknown role(s) {', '.join(map(repr, unknown))}; roles are: {', '.join(ROLES)}")
    for role in REQUIRED_ROLES:
        if not columns.get(role):
            raise LogError(f"{source}: the role {role!r} is required (the column with each request's creation "
                           f"time), e.g. {role}=CreatedDate")
    return {r: str(c) for r, c in columns.items() if c}


# ------------------------------------------------------------------------------------------ result
@dataclass
class ServiceFit:
    """A lognormal service-time fit for one group of rows (a category or an agency). Hours throughout."""

    name: str
    label: str
    rows: int
    closed: int
    median_h: float
    sigma: float
    empirical_median_h: float
    empirical_p90_h: float
    ks: float
    instant_share: float
    due_rows: int = 0
    deadline_hours: float | None = None
    median_due_h: float | None = None
    due_rule: str = "none"
    on_time_share: float | None = None
    fitted_on_time_share: float | None = None
    method: str = ""

    @property
    def mu(self) -> float:
        return math.log(self.median_h)

    @property
    def p90_h(self) -> float:
        """Fitted 90th percentile (hours)."""
        return self.median_h * math.exp(1.2815515655446004 * self.sigma)

    @property
    def mean_h(self) -> float:
        """Fitted mean (hours)."""
        return self.median_h * math.exp(self.sigma**2 / 2)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        t = np.maximum(np.asarray(t, dtype=float), 1e-300)
        return special.ndtr((np.log(t) - self.mu) / self.sigma)


@dataclass
class LogFit:
    """What :func:`calibrate_from_log` read, rejected, fitted and wrote. Hours, shares 0–1, per day."""

    log: str
    out: str
    columns: dict[str, str]
    rows_read: int
    rows_used: int
    rejects: dict[str, int]
    reject_effects: dict[str, str]
    date_formats: dict[str, str]
    first_created: str
    last_created: str
    span_days: float
    requests_per_day: float
    weekday_profile: list[float]
    hour_profile: list[float]
    hourly: bool
    categories: dict[str, ServiceFit]
    category_share: dict[str, float]
    agencies: dict[str, ServiceFit]
    channel_mix: dict[str, float]
    channel_mapping: dict[str, tuple[str, int]]
    closed_rows: int
    due_rows: int
    median_close_h: float
    p90_close_h: float
    on_time_close_share: float
    implied_median_close_h: float
    implied_p90_close_h: float
    implied_on_time_close_share: float
    staff_per_bureau: int
    run_days: float
    command: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A plain-text report for the terminal."""
        L: list[str] = []
        L.append(f"Log {self.log}: {self.rows_read} rows read, {self.rows_used} used "
                 f"(created {self.first_created} .. {self.last_created}, {self.span_days:.0f} days)")
        L.append("Date formats: " + ", ".join(f"{r} {f!r}" for r, f in self.date_formats.items()))
        if self.rejects:
            L.append("Rows with missing or impossible values (counted, not silently dropped):")
            for reason, n in self.rejects.items():
                L.append(f"  {reason:<34} {n:>8}   {self.reject_effects.get(reason, '')}")
        else:
            L.append("Rows with missing or impossible values: none")
        L.append(f"Arrivals: {self.requests_per_day:.2f} per day; weekday profile "
                 + " ".join(f"{d} {w:.2f}" for d, w in zip(WEEKDAYS, self.weekday_profile, strict=True)))
        if self.hourly:
            L.append("Hour profile (fitted, --hourly): " + " ".join(f"{w:.2f}" for w in self.hour_profile))
        else:
            L.append("Hour profile: flat in the scenario (clock times not declared trustworthy; pass --hourly)")
        if self.channel_mix:
            L.append("Channels: " + ", ".join(f"{k} {v:.1%}" for k, v in self.channel_mix.items()))
            L.append("  mapping: " + ", ".join(f"{raw!r}→{ch} ({n})" for raw, (ch, n) in self.channel_mapping.items()))
        if self.closed_rows:
            due = f", closed by due date {self.on_time_close_share:.1%}" if self.due_rows else ""
            L.append(f"Log: median close {self.median_close_h:.1f} h, p90 {self.p90_close_h / 24:.1f} days{due} "
                     f"({self.closed_rows} closed rows, {self.due_rows} with a due date)")
            idue = f", closed by due {self.implied_on_time_close_share:.1%}" if self.due_rows else ""
            L.append(f"Fitted scenario (mixture of the category fits): median close {self.implied_median_close_h:.1f} h, "
                     f"p90 {self.implied_p90_close_h / 24:.1f} days{idue}")
        for title, fits in (("Per category", self.categories), ("Per agency (report only)", self.agencies)):
            if not fits:
                continue
            L.append(f"{title}: lognormal fits (hours; KS = Kolmogorov–Smirnov distance, closes < 1 min censored)")
            L.append(f"  {'name':<34}{'rows':>7}{'share':>7}{'med':>9}{'fit':>9}{'p90':>9}{'fit':>9}{'sigma':>6}"
                     f"{'KS':>6}{'due h':>8}{'on time':>8}{'fit':>6}")
            for key, f in fits.items():
                share = self.category_share.get(key, f.rows / max(self.rows_used, 1))
                mark = "*" if f.due_rule == "equivalent" else " "
                due = f"{f.deadline_hours:7.0f}{mark}" if f.deadline_hours else f"{'-':>8}"
                ot = f"{f.on_time_share:8.1%}" if f.on_time_share is not None else f"{'-':>8}"
                fot = f"{f.fitted_on_time_share:6.1%}" if f.fitted_on_time_share is not None else f"{'-':>6}"
                name = f.label if len(f.label) <= 33 else f.label[:32] + "…"
                L.append(f"  {name:<34}{f.rows:>7}{share:>7.1%}{f.empirical_median_h:>9.2f}{f.median_h:>9.2f}"
                         f"{f.empirical_p90_h:>9.1f}{f.p90_h:>9.1f}{f.sigma:>6.2f}{f.ks:>6.2f}{due}{ot}{fot}")
        L.append(f"Staff per bureau: {self.staff_per_bureau} (no queue: P(all busy) < {SATURATION_RISK:g}); "
                 f"run.days {self.run_days:g}")
        if any(f.due_rule == "equivalent" for f in [*self.categories.values(), *self.agencies.values()]):
            L.append("  (due h marked * : due times vary within the group; the equivalent due time is used, "
                     "the one at which the group's observed on-time share is reached)")
        for n in self.notes:
            L.append(f"Note: {n}")
        return "\n".join(L)


# ------------------------------------------------------------------------------------------ reading
def _read_log(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    if not path.exists():
        raise LogError(f"{path}: log file not found")
    if path.is_dir():
        raise LogError(f"{path}: is a folder, expected a CSV export of work orders")
    raw = path.read_bytes()[:65536]
    if not raw.strip():
        raise LogError(f"{path}: the file is empty")
    encoding = "utf-8-sig"
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 4:  # not merely a character cut at the 64 KiB boundary
            encoding = "latin-1"
    try:
        sample = raw.decode(encoding, errors="replace")
        sep = csv.Sniffer().sniff(sample.split("\n", 1)[0] + "\n", delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        header = pd.read_csv(path, nrows=0, sep=sep, encoding=encoding).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LogError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from None
    header = [str(c) for c in header]
    stripped = {c.strip(): c for c in header}
    usecols = {}
    for role, col in columns.items():
        actual = col if col in header else stripped.get(col.strip())
        if actual is None:
            hint = difflib.get_close_matches(col, header, n=1)
            raise LogError(
                f"{path}: column {col!r} (mapped to {role}) is not in the file"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; the file's columns are: {', '.join(header)}")
        usecols[role] = actual
    try:
        df = pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False,
                         usecols=sorted(set(usecols.values())))
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise LogError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from None
    return pd.DataFrame({role: df[col].str.strip() for role, col in usecols.items()})


def _parse_dates(values: pd.Series, fmt: str) -> pd.Series:
    kwargs: dict[str, Any] = {"errors": "coerce"}
    if fmt == "ISO8601":
        kwargs["utc"] = True
    try:
        parsed = pd.to_datetime(values, format=fmt, **kwargs)
    except (ValueError, TypeError):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed


def _infer_format(values: pd.Series, preferred: str | None) -> tuple[str, float]:
    """The candidate format that parses most of (a sample of) the non-blank values, and that share."""
    nonblank = values[values != ""]
    if nonblank.empty:
        return preferred or _DATE_FORMATS[0], 0.0
    sample = nonblank.iloc[:: max(1, len(nonblank) // 2000)].iloc[:2000]
    best, best_share = _DATE_FORMATS[0], -1.0
    order = ([preferred] if preferred else []) + [f for f in _DATE_FORMATS if f != preferred]
    for fmt in order:
        share = float(_parse_dates(sample, fmt).notna().mean())
        if share > best_share + 1e-12:
            best, best_share = fmt, share
        if share == 1.0:
            break
    return best, best_share


# ------------------------------------------------------------------------------------------ fitting
def _fit_points(hours: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted log hours (floored at one minute), their plotting positions and the censoring mask."""
    x = np.sort(np.log(np.maximum(hours, FLOOR_H)))
    n = len(x)
    if n > MAX_FIT_POINTS:
        pp = (np.arange(MAX_FIT_POINTS) + 0.5) / MAX_FIT_POINTS
        x = np.quantile(x, pp, method="inverted_cdf")
    else:
        pp = (np.arange(n) + 0.5) / n
    cens = x <= math.log(FLOOR_H) + 1e-12
    return x, pp, cens


def _cvm(x: np.ndarray, pp: np.ndarray, cens: np.ndarray, mu: float, sigma: float) -> float:
    """Cramér–von Mises distance on log hours; censored points only count when the fit puts them above 1 min."""
    f = special.ndtr((x - mu) / sigma)
    d = f - pp
    d = np.where(cens, np.minimum(d, 0.0), d)
    return float(np.dot(d, d))


def ks_distance(hours: np.ndarray, median_h: float, sigma: float) -> float:
    """Kolmogorov–Smirnov distance between durations (hours) and a lognormal, closes < 1 min censored."""
    x = np.sort(np.log(np.maximum(np.asarray(hours, dtype=float), FLOOR_H)))
    n = len(x)
    if n == 0:
        return float("nan")
    u, first = np.unique(x, return_index=True)
    upper = np.searchsorted(x, u, side="right") / n
    lower = first / n
    f = special.ndtr((u - math.log(median_h)) / sigma)
    below = np.abs(f - lower)
    below[u <= math.log(FLOOR_H) + 1e-12] = 0.0  # under one minute the log says only "at most one minute"
    return float(max(np.abs(upper - f).max(), below.max()))


def _fit_lognormal(hours: np.ndarray, deadline_h: float | None, on_time: float | None,
                   due_rows: int) -> tuple[float, float, str]:
    """(median_h, sigma, method) of the lognormal fitted to durations in hours (see the module docstring)."""
    x, pp, cens = _fit_points(hours)
    if deadline_h is not None and on_time is not None and due_rows >= MIN_FIT_ROWS:
        p = min(max(on_time, 0.5 / due_rows), 1.0 - 0.5 / due_rows)
        z = float(special.ndtri(p))
        log_d = math.log(deadline_h)

        def obj_c(log_s: float) -> float:
            s = math.exp(log_s)
            return _cvm(x, pp, cens, log_d - s * z, s)

        grid = np.linspace(math.log(SIGMA_MIN), math.log(SIGMA_MAX), 41)
        vals = [obj_c(g) for g in grid]
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = optimize.minimize_scalar(obj_c, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
        log_s = float(res.x) if res.fun <= vals[i] else float(grid[i])
        s = math.exp(log_s)
        return math.exp(log_d - s * z), s, "CvM, on-time share kept"

    def obj(p: np.ndarray) -> float:
        s = min(max(math.exp(p[1]), SIGMA_MIN), SIGMA_MAX)
        return _cvm(x, pp, cens, p[0], s)

    start = [float(np.median(x)), math.log(min(max(float(np.std(x)), SIGMA_MIN), SIGMA_MAX))]
    res = optimize.minimize(obj, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    mu, s = float(res.x[0]), min(max(math.exp(float(res.x[1])), SIGMA_MIN), SIGMA_MAX)
    return math.exp(mu), s, "CvM"


def _fit_group(name: str, label: str, g: pd.DataFrame, fallback: ServiceFit | None) -> ServiceFit:
    """Fit one group of rows: columns ``hours`` (NaN if not closed), ``due_h`` (NaN if no due), ``on_time``."""
    hours = g["hours"].dropna().to_numpy(float)
    both = g["on_time"].notna()
    due_h = g["due_h"].dropna().to_numpy(float)
    due_rows = int(both.sum())
    deadline = median_due = None
    rule = "none"
    on_time = None
    if len(due_h):
        median_due = float(np.median(due_h))
        constant = np.mean(np.abs(due_h - median_due) <= 0.01 * median_due + 1e-9) >= CONSTANT_DUE_SHARE
        if due_rows:
            on_time = float(g.loc[both, "on_time"].astype(float).mean())
        if constant or not due_rows:
            deadline, rule = max(median_due, FLOOR_H), "median"
        else:
            closes = g.loc[both, "hours"].to_numpy(float)
            deadline, rule = max(float(np.quantile(closes, on_time)), FLOOR_H), "equivalent"
    emp_med = float(np.median(hours)) if len(hours) else float("nan")
    emp_p90 = float(np.quantile(hours, 0.9)) if len(hours) else float("nan")
    instant = float(np.mean(hours < FLOOR_H)) if len(hours) else float("nan")
    if len(hours) >= MIN_FIT_ROWS:
        med, sigma, method = _fit_lognormal(hours, deadline, on_time, due_rows)
    elif fallback is not None:
        med, sigma, method = fallback.median_h, fallback.sigma, f"whole log (only {len(hours)} closed rows)"
    else:
        raise LogError(f"only {len(hours)} rows with a usable close date: at least {MIN_FIT_ROWS} are needed "
                       "to fit a service-time distribution")
    fit = ServiceFit(
        name=name, label=label, rows=len(g), closed=len(hours), median_h=med, sigma=sigma,
        empirical_median_h=emp_med, empirical_p90_h=emp_p90,
        ks=ks_distance(hours, med, sigma) if len(hours) else float("nan"), instant_share=instant,
        due_rows=due_rows, deadline_hours=deadline, median_due_h=median_due, due_rule=rule,
        on_time_share=on_time, method=method)
    if deadline is not None and on_time is not None:
        fit.fitted_on_time_share = float(fit.cdf(deadline))
    return fit


def _mixture_quantile(fits: list[ServiceFit], weights: np.ndarray, q: float) -> float:
    def f(log_t: float) -> float:
        t = math.exp(log_t)
        return float(sum(w * fit.cdf(t) for fit, w in zip(fits, weights, strict=True))) - q

    lo, hi = math.log(1e-9), math.log(1e9)
    if f(lo) > 0 or f(hi) < 0:
        return float("nan")
    return math.exp(optimize.brentq(f, lo, hi, xtol=1e-10))


# ------------------------------------------------------------------------------------------ mapping
def channel_of(value: str) -> str:
    """The model channel (online, hotline, offline) of a log's channel value (see the module docstring)."""
    v = value.lower().replace("e-mail", "email").replace("call center", "callcenter")
    v = v.replace("self-service", "selfservice").replace("self service", "selfservice")
    words = set(re.findall(r"[a-z0-9]+", v))
    if words & _STRONG_ONLINE:
        return "online"
    if words & _HOTLINE_WORDS:
        return "hotline"
    if words & _ONLINE_WORDS:
        return "online"
    return "offline"


def _slug(label: str, taken: set[str]) -> str:
    s = re.sub(r"\W+", "_", label.lower()).strip("_") or "blank"
    if s[0].isdigit():
        s = "c_" + s
    base, i = s, 2
    while s in taken:
        s, i = f"{base}_{i}", i + 1
    taken.add(s)
    return s


# -------------------------------------------------------------------------------------------- main
def calibrate_from_log(log: str, columns: dict[str, str], out: str, date_format: str | None = None,
                       hourly: bool = False, top_categories: int = 10, days: float | None = None) -> LogFit:
    """Read a work-order export, fit it, and write a scenario YAML to ``out`` that reproduces it.

    ``columns`` maps roles (:data:`ROLES`) to the file's column names; ``date_format`` is a ``strptime``
    format for all date columns (inferred per column when omitted); ``hourly`` fits arrivals by hour of day
    (only when the clock times can be trusted); ``top_categories`` categories are kept, the rest pooled into
    ``other``; ``days`` is the scenario's ``run.days`` (simulated days; default: the log's span, at most 365).
    Raises :class:`LogError` (a :class:`~sim.errors.WenzhengError`) for every problem with the inputs.
    """
    path = Path(log)
    out_path = Path(out)
    columns = _check_arguments(columns, out, top_categories, days)
    df = _read_log(path, columns)
    rows_read = len(df)
    if rows_read == 0:
        raise LogError(f"{path}: the file has a header but no rows")
    rejects = _Rejects()
    parsed, formats = _parse_date_columns(df, path, columns, date_format)
    data = _usable_rows(df, parsed, path, columns, rejects)
    notes: list[str] = []
    arrivals = _arrivals(data, path, columns, hourly, notes)
    cats = _categories(data, top_categories)
    fits, whole = _category_fits(data, cats, notes)
    agencies = _agency_fits(data, whole, notes)
    channel_mix, mapping = _channels(data)
    closed_h = data["hours"].dropna().to_numpy(float)
    due_rows = int(data["on_time"].notna().sum())
    span_days = arrivals["span_days"]
    fit_obj = LogFit(
        log=str(path), out=str(out_path), columns=dict(columns), rows_read=rows_read, rows_used=len(data),
        rejects=rejects.counts, reject_effects=rejects.effects, date_formats=formats,
        first_created=arrivals["first"].isoformat(sep=" "), last_created=arrivals["last"].isoformat(sep=" "),
        span_days=span_days, requests_per_day=arrivals["requests_per_day"],
        weekday_profile=arrivals["weekday_profile"], hour_profile=arrivals["hour_profile"], hourly=hourly,
        categories=fits, category_share=cats.share, agencies=agencies, channel_mix=channel_mix,
        channel_mapping=mapping, closed_rows=len(closed_h), due_rows=due_rows,
        median_close_h=float(np.median(closed_h)) if len(closed_h) else float("nan"),
        p90_close_h=float(np.quantile(closed_h, 0.9)) if len(closed_h) else float("nan"),
        on_time_close_share=float(data["on_time"].dropna().astype(float).mean()) if due_rows else float("nan"),
        **_implied_figures(fits, cats.share),
        staff_per_bureau=_staff_per_bureau(fits, cats.share, arrivals["requests_per_day"], notes),
        run_days=float(days) if days is not None else float(min(365.0, math.ceil(span_days))), notes=notes,
        command=_command(log, columns, out, date_format, hourly, top_categories, days))
    _write_scenario(fit_obj, out_path, arrivals["first"], cats)
    return fit_obj


def _check_arguments(columns: dict[str, str], out: str, top_categories: int, days: float | None) -> dict[str, str]:
    """The checked column mapping; :class:`LogError` for an argument out of range or a bad ``out`` path."""
    columns = _check_roles(dict(columns), "columns")
    out_path = Path(out)
    if top_categories < 1:
        raise LogError(f"top_categories must be at least 1, got {top_categories}")
    if days is not None and not (0 < days <= 3650):
        raise LogError(f"days (the scenario's run.days) must be in (0, 3650], got {days}")
    if out_path.suffix.lower() not in (".yaml", ".yml"):
        raise LogError(f"--out {out}: the scenario file must end in .yaml")
    if out_path.is_dir():
        raise LogError(f"--out {out}: is a folder, expected a scenario .yaml file name")
    return columns


class _Rejects:
    """Rows with missing or impossible values, counted per reason (in the order first met), with the
    effect each reason has on the fit."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.effects: dict[str, str] = {}

    def count(self, reason: str, mask: pd.Series, effect: str) -> None:
        n = int(mask.sum())
        if n:
            self.counts[reason] = n
            self.effects[reason] = effect


def _parse_date_columns(df: pd.DataFrame, path: Path, columns: dict[str, str],
                        date_format: str | None) -> tuple[dict[str, pd.Series], dict[str, str]]:
    """Each date role parsed (NaT where unusable), and the format used per role ("... (given|inferred)")."""
    formats: dict[str, str] = {}
    parsed: dict[str, pd.Series] = {}
    for role in DATE_ROLES:
        if role not in df:
            continue
        vals = df[role]
        if date_format:
            fmt, how = date_format, "given"
        else:
            fmt, share = _infer_format(vals, formats.get("created", "").split(" (")[0] or None)
            how = "inferred"
            if share < 0.5 and (vals != "").any():
                example = vals[vals != ""].iloc[0]
                raise LogError(f"{path}: column {columns[role]!r} ({role}): cannot work out the date format "
                               f"(e.g. {example!r}); give it with --date-format, e.g. '%m/%d/%Y %I:%M:%S %p'")
        parsed[role] = _parse_dates(vals, fmt)
        formats[role] = f"{fmt} ({how})"
    return parsed, formats


def _usable_rows(df: pd.DataFrame, parsed: dict[str, pd.Series], path: Path, columns: dict[str, str],
                 rejects: _Rejects) -> pd.DataFrame:
    """The rows with a usable created date: ``created``, ``hours`` (created → closed; NaN when unusable),
    ``due_h`` (created → due; NaN when unusable), ``on_time`` and the category, channel and agency text
    ("(blank)" when empty). Every unusable value is counted in ``rejects``."""
    created = parsed["created"]
    blank_created = df["created"] == ""
    rejects.count("created: missing", blank_created, "row not used")
    rejects.count("created: unparseable", ~blank_created & created.isna(), "row not used")
    used = created.notna()
    if int(used.sum()) == 0:
        example = df.loc[~blank_created, "created"].head(1).tolist()
        raise LogError(f"{path}: no row has a usable created date in column {columns['created']!r}"
                       + (f" (e.g. {example[0]!r}; check --date-format)" if example else ""))
    data = pd.DataFrame({"created": created[used]})
    data["hours"] = _hours_after_created(df, parsed, used, data, "closed", rejects, {
        "missing": "closed: missing (still open)", "effect": "counted as an arrival, not as a service time"})
    data["due_h"] = _hours_after_created(df, parsed, used, data, "due", rejects, {
        "missing": "due: missing", "effect": "not used for due times or the on-time share"})
    data["on_time"] = (data["hours"] <= data["due_h"]).where(data["hours"].notna() & data["due_h"].notna())
    effects = {"category": "pooled into 'other'", "channel": "left out of the channel mix",
               "agency": "left out of the per-agency report"}
    for role, effect in effects.items():
        if role in df:
            vals = df.loc[used, role]
            blank = vals == ""
            rejects.count(f"{role}: blank", blank, effect)
            data[role] = vals.where(~blank, "(blank)")
    return data


def _hours_after_created(df: pd.DataFrame, parsed: dict[str, pd.Series], used: pd.Series, data: pd.DataFrame,
                         role: str, rejects: _Rejects, words: dict[str, str]) -> pd.Series:
    """Hours from created to the ``role`` date (closed or due); NaN when missing, unparseable or earlier."""
    if role not in parsed:
        return pd.Series(np.nan, index=data.index)
    when = parsed[role][used]
    blank = df.loc[used, role] == ""
    rejects.count(words["missing"], blank, words["effect"])
    rejects.count(f"{role}: unparseable", ~blank & when.isna(), words["effect"])
    h = (when - data["created"]).dt.total_seconds() / 3600.0
    rejects.count(f"{role}: before created", h < 0, words["effect"])
    return h.where(h >= 0)


def _arrivals(data: pd.DataFrame, path: Path, columns: dict[str, str], hourly: bool,
              notes: list[str]) -> dict[str, Any]:
    """The log's span (first, last created; days), arrivals per day and the weekday and hour profiles
    (arrivals per weekday or hour relative to the mean one)."""
    first, last = data["created"].min(), data["created"].max()
    span_days = float((last.normalize() - first.normalize()).days + 1)
    calendar = pd.date_range(first.normalize(), last.normalize(), freq="D")
    days_per_weekday = np.bincount(calendar.day_of_week, minlength=7).astype(float)
    per_weekday = np.bincount(data["created"].dt.day_of_week, minlength=7).astype(float)
    rate = np.divide(per_weekday, days_per_weekday, out=np.zeros(7), where=days_per_weekday > 0)
    per_hour = np.bincount(data["created"].dt.hour, minlength=24).astype(float)
    if span_days < 28:
        notes.append(f"the log spans only {span_days:.0f} days: the weekday profile rests on few days")
    if hourly:
        clock = data["created"] - data["created"].dt.normalize()
        if (clock == pd.Timedelta(0)).all():
            raise LogError(f"{path}: --hourly asked for, but every created time in {columns['created']!r} is "
                           "midnight (the column holds dates only)")
    return {"first": first, "last": last, "span_days": span_days, "requests_per_day": len(data) / span_days,
            "weekday_profile": (rate / rate.mean()).tolist() if rate.sum() > 0 else [1.0] * 7,
            "hour_profile": (per_hour / per_hour.mean()).tolist()}


@dataclass
class _Categories:
    """The scenario's categories: ``key_of`` (log value → key) for the kept ones, ``other_key`` for the
    pooled rest (None when nothing is pooled), ``label_of`` (key → words) and ``share`` (key → share of
    the used rows)."""

    key_of: dict[str, str]
    other_key: str | None
    label_of: dict[str, str]
    share: dict[str, float] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [*self.key_of.values(), *([self.other_key] if self.other_key else [])]


def _categories(data: pd.DataFrame, top_categories: int) -> _Categories:
    """Keep the ``top_categories`` most frequent categories, pool the rest; sets ``data["cat"]`` (the key)."""
    rows_used = len(data)
    if "category" in data:
        counts = data["category"].value_counts(sort=True)
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        top = [c for c in counts.index[:top_categories] if c != "(blank)"]
        rest_n = int(counts[~counts.index.isin(top)].sum())
    else:
        top, rest_n = [], rows_used
    taken: set[str] = set()
    key_of = {c: _slug(c, taken) for c in top}
    other_key = _slug("other" if "other" not in taken else "other_pooled", taken) if rest_n else None
    if "category" in data:
        data["cat"] = data["category"].map(key_of).fillna(other_key or "")
    else:
        other_key = "all"
        data["cat"] = other_key
    label_of = {v: k for k, v in key_of.items()}
    if other_key:
        label_of[other_key] = ("all requests" if "category" not in data
                               else f"other ({counts.size - len(top)} categories pooled)")
    cats = _Categories(key_of=key_of, other_key=other_key, label_of=label_of)
    share = (data["cat"].value_counts() / rows_used).to_dict()
    cats.share = {k: float(share.get(k, 0.0)) for k in cats.keys}
    return cats


def _category_fits(data: pd.DataFrame, cats: _Categories,
                   notes: list[str]) -> tuple[dict[str, ServiceFit], ServiceFit | None]:
    """A service-time fit per category (falling back on the whole log's for small ones) and the whole
    log's fit; ``({}, None)`` when the log has no usable close date."""
    if not data["hours"].notna().any():
        notes.append("no usable close dates: service times are the catalogue defaults, not from the log")
        return {}, None
    whole = _fit_group("all", "all rows", data, None)
    return {key: _fit_group(key, cats.label_of[key], data[data["cat"] == key], whole) for key in cats.keys}, whole


def _agency_fits(data: pd.DataFrame, whole: ServiceFit | None, notes: list[str]) -> dict[str, ServiceFit]:
    """A service-time fit per agency with enough closed rows (for the report only), largest first."""
    if "agency" not in data or whole is None:
        return {}
    agencies: dict[str, ServiceFit] = {}
    for a, g in data.groupby("agency", sort=False):
        if a == "(blank)":
            continue
        if g["hours"].notna().sum() >= MIN_FIT_ROWS:
            agencies[str(a)] = _fit_group(str(a), str(a), g, whole)
    agencies = dict(sorted(agencies.items(), key=lambda kv: -kv[1].rows))
    skipped = data["agency"].nunique() - len(agencies) - int((data["agency"] == "(blank)").any())
    if skipped > 0:
        notes.append(f"{skipped} agencies with fewer than {MIN_FIT_ROWS} closed rows are not fitted separately")
    return agencies


def _channels(data: pd.DataFrame) -> tuple[dict[str, float], dict[str, tuple[str, int]]]:
    """The channel mix (online, hotline, offline shares) and how each log value was mapped (with its rows)."""
    channel_mix: dict[str, float] = {}
    mapping: dict[str, tuple[str, int]] = {}
    if "channel" not in data:
        return channel_mix, mapping
    vc = data.loc[data["channel"] != "(blank)", "channel"].value_counts()
    totals = {"online": 0, "hotline": 0, "offline": 0}
    for raw, n in vc.items():
        ch = channel_of(str(raw))
        mapping[str(raw)] = (ch, int(n))
        totals[ch] += int(n)
    tot = sum(totals.values())
    if tot:
        channel_mix = {k: v / tot for k, v in totals.items()}
    return channel_mix, mapping


def _implied_figures(fits: dict[str, ServiceFit], share: dict[str, float]) -> dict[str, float]:
    """What the fitted scenario implies: median and p90 time to close (hours) of the category mixture and
    the share closed on time (weighted by the categories' due rows)."""
    imp_med = imp_p90 = imp_on_time = float("nan")
    if fits:
        fl = list(fits.values())
        w = np.array([share[f.name] for f in fl])
        w = w / w.sum()
        imp_med = _mixture_quantile(fl, w, 0.5)
        imp_p90 = _mixture_quantile(fl, w, 0.9)
        dw = np.array([f.due_rows for f in fl], dtype=float)
        if dw.sum() > 0:
            imp_on_time = float(sum(d * (f.fitted_on_time_share or 0.0) for f, d in zip(fl, dw, strict=True))
                                / dw.sum())
    return {"implied_median_close_h": imp_med, "implied_p90_close_h": imp_p90,
            "implied_on_time_close_share": imp_on_time}


def _staff_per_bureau(fits: dict[str, ServiceFit], share: dict[str, float], requests_per_day: float,
                      notes: list[str]) -> int:
    """Staff so that no queue forms: M/G/inf occupancy of each bureau is Poisson(arrivals per hour × mean
    service hours); P(all busy) < SATURATION_RISK. At most 100000."""
    staff = 1
    for key, f in fits.items():
        load = requests_per_day * share[key] / 24.0 * f.mean_h
        staff = max(staff, _poisson_quantile(load, 1.0 - SATURATION_RISK) + 1)
    if staff > 100_000:
        notes.append(f"the staff needed for no queue ({staff}) exceeds the scenario's limit; capped at 100000")
        staff = 100_000
    return staff


def _write_scenario(fit: LogFit, out_path: Path, first: pd.Timestamp, cats: _Categories) -> None:
    """Build, validate and write the scenario (header comment + YAML); the written file must load."""
    from sim.scenario import ScenarioError, load_scenario, validate

    scenario = _scenario_dict(fit, out_path, first, cats.label_of, cats.key_of, cats.other_key)
    try:
        validate(scenario, str(out_path))
    except ScenarioError as exc:  # pragma: no cover - a bug here, not a user mistake
        raise LogError(f"the scenario built from {fit.log} does not validate: {exc}") from None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(_header(fit, cats.label_of) + _dump(scenario), encoding="utf-8")
    load_scenario(out_path)  # the written file must load as it stands


def _command(log: str, columns: dict[str, str], out: str, date_format: str | None, hourly: bool,
             top_categories: int, days: float | None) -> str:
    """The ``run.py`` command line that writes the same scenario."""
    import shlex

    parts = ["python run.py calibrate-from-log", shlex.quote(str(log)),
             "--columns", shlex.quote(",".join(f"{r}={c}" for r, c in columns.items()))]
    if date_format:
        parts += ["--date-format", shlex.quote(date_format)]
    if hourly:
        parts.append("--hourly")
    if top_categories != 10:
        parts += ["--top-categories", str(top_categories)]
    parts += ["--out", shlex.quote(str(out))]
    return " ".join(parts)


def _poisson_quantile(mean: float, q: float) -> int:
    from scipy.stats import poisson

    return int(poisson.ppf(q, max(mean, 1e-12)))


def _r(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _scenario_dict(fit: LogFit, out_path: Path, first: pd.Timestamp, label_of: dict[str, str],
                   key_of: dict[str, str], other_key: str | None) -> dict[str, Any]:
    categories: dict[str, Any] = {}
    for key in [*key_of.values(), *([other_key] if other_key else [])]:
        cat: dict[str, Any] = {"share": _r(fit.category_share[key], 6), "jurisdiction": "prefecture",
                               "consultation_share": 0.0, "service_time_dist": "lognormal"}
        f = fit.categories.get(key)
        if f is not None:
            cat["service_time_median_h"] = _r(f.median_h, 6)
            cat["service_time_sigma"] = _r(f.sigma, 6)
            if f.deadline_hours is not None:
                cat["deadline_hours"] = _r(f.deadline_hours, 6)
        categories[key] = cat
    flat = [1.0] * 24
    return {
        "name": out_path.stem,
        "description": f"Reproduces the work-order log {Path(fit.log).name} ({fit.rows_used} requests, "
                       f"{fit.first_created[:10]} to {fit.last_created[:10]}) with behaviour switched off.",
        "world": {"population": 1000, "counties": 1, "townships": 1, "start_date": first.date().isoformat()},
        "demand": {
            "requests_per_day": _r(fit.requests_per_day, 6),
            "weekday_weights": [_r(w) for w in fit.weekday_profile],
            "hour_weights": [_r(w) for w in fit.hour_profile] if fit.hourly else flat,
            "categories": categories,
        },
        "citizens": {"behaviour": False,
                     **({"channel_mix": {k: _r(v, 6) for k, v in fit.channel_mix.items()}} if fit.channel_mix else {})},
        "platform": {"instant_intake": True, "offline_office_hours": False, "direct_answer_share": 0.0,
                     "classification_accuracy": 1.0,
                     "dispatch_delay_h": 0.0, "handover_delay_h": 0.0, "callback_delay_h": 0.0},
        "departments": {"hours": "7x24", "effort_choice": False,
                        "staff": {"prefecture": fit.staff_per_bureau, "county": 1, "township": 1}},
        "policy": {"response_mandate_hours": None, "dispatch_mode": "direct", "platform_hours": "7x24",
                   "tracking": False, "supervision_intensity": 0.0, "public_ranking": False, "callback": False,
                   "reopen_allowed": False, "systemic_fix": False},
        "run": {"days": fit.run_days, "warmup_days": 0, "seed": 1},
    }


def _wrap(text: str, indent: str = "#   ") -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=108, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False)


def _header(fit: LogFit, label_of: dict[str, str]) -> str:
    L = ["# Generated by `python run.py calibrate-from-log`: this scenario reproduces the process recorded in a",
         "# city's work-order log, with every behavioural mechanism switched off (time to close = service time).",
         "# Regenerate it rather than edit it by hand:"]
    L += _wrap(fit.command, "#   ")
    L.append("# Where the numbers come from:")
    L += _wrap(f"log {Path(fit.log).name}: {fit.rows_read} rows read, {fit.rows_used} used, created "
               f"{fit.first_created} .. {fit.last_created} ({fit.span_days:.0f} days).")
    if fit.rejects:
        L += _wrap("rows with missing or impossible values: "
                   + "; ".join(f"{k} {v}" for k, v in fit.rejects.items()) + ".")
    L += _wrap(f"requests_per_day = {fit.rows_used} rows / {fit.span_days:.0f} days; weekday_weights = arrivals "
               "per weekday / the mean day.")
    if fit.hourly:
        L += _wrap("hour_weights = arrivals per hour of day / the mean hour (clock times trusted: --hourly).")
    else:
        L += _wrap("hour_weights flat: the log's clock times were not declared trustworthy (no --hourly), so "
                   "no hour-of-day shape is fitted from them.")
    if fit.channel_mix:
        L += _wrap("channel_mix from the channel column: "
                   + ", ".join(f"{raw} → {ch}" for raw, (ch, _) in fit.channel_mapping.items()) + ".")
    L += _wrap("categories: the most frequent values of the category column, the rest pooled into 'other'. "
               "Service times: lognormal per category fitted to created → closed hours (Cramér–von Mises "
               "distance, closes under one minute censored, probability of closing by deadline_hours = the "
               "category's observed share closed by its due date). deadline_hours = the median of due − created, "
               "or the equivalent due time where it varies within the category.")
    L += _wrap(f"staff per bureau = {fit.staff_per_bureau}: enough that no queue forms (M/G/inf occupancy, "
               "P(all busy) < 1e-6).")
    L += _wrap(f"Budget: {fit.staff_per_bureau * len(label_of):,} department staff ({len(label_of)} bureaus, 7×24); "
               "operators as the schema default (intake is instant); no inspections, no call-backs.")
    if fit.closed_rows:
        due = f", {fit.on_time_close_share:.1%} closed by the due date" if fit.due_rows else ""
        idue = f", {fit.implied_on_time_close_share:.1%} by the due date" if fit.due_rows else ""
        L += _wrap(f"log: median close {fit.median_close_h:.1f} h, p90 {fit.p90_close_h / 24:.1f} days{due}; "
                   f"fitted mixture: median {fit.implied_median_close_h:.1f} h, p90 "
                   f"{fit.implied_p90_close_h / 24:.1f} days{idue}.")
    L += _wrap(f"run.days = {fit.run_days:g} simulated days.")
    L.append("# Categories (key: value in the log, rows, Kolmogorov–Smirnov distance of the fit):")
    for key, label in label_of.items():
        f = fit.categories.get(key)
        ks = f"KS {f.ks:.2f}" if f is not None else "not fitted"
        n = f.rows if f is not None else round(fit.category_share.get(key, 0) * fit.rows_used)
        L += _wrap(f"{key}: {label}, {n} rows, {ks}")
    return "\n".join(L) + "\n"


class _FlowListDumper(yaml.SafeDumper):
    pass


def _repr_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_FlowListDumper.add_representer(list, _repr_list)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True, width=110)
