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
- per category a mixture of lognormal service times fitted to the created→closed durations (hours), and the due time
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

The time-to-close distribution (what the scenario's service times reproduce). The *censoring horizon* is
the log's latest timestamp (latest created or closed time). A row still open is right-censored at
(horizon − created) hours, and every time-to-close figure is a Kaplan–Meier estimate (:func:`kaplan_meier`).
Rows whose ``status`` marks them cancelled (:data:`CANCELLED`) are arrivals but not closes. A close stamped
at midnight of the creation day (a date-only close, "before" its creation) or less than a minute before
creation is read as a close on creation (0 h); other closes before creation are unusable. Each category's
distribution is pooled toward its agency's (:data:`SHRINK_ROWS`) and written as a mixture of lognormal
phases with a fitted tail (:func:`fit_phases`): one model category per log category, with
``service_time_dist: mixture`` and its ``service_time_phases`` (the model draws a case's phase by weight).
The one-lognormal fit below is kept as a summary in the report. :func:`compare` runs the scenario and
measures the simulated time to close with the same censoring (a case open at the end of its run is open
for end − created hours); ``python -m experiments.logfit check|holdout`` prints the comparison.

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
ROLES: tuple[str, ...] = ("created", "closed", "due", "category", "channel", "agency", "status")
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
#: Cumulative probabilities (of the closes after one minute) at which a category's distribution is cut into
#: lognormal phases; the slice above the last cut is the fitted tail (see :func:`fit_phases`).
PHASE_CUTS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.75, 0.85, 0.92)
#: The tail lognormal is fitted to conditional probabilities 0.5 … this (or the share closed in the follow-up).
TAIL_TOP: float = 0.98
#: Prior strength (rows) of hierarchical pooling: a category with n rows gets weight n / (n + SHRINK_ROWS) on
#: its own distribution and the rest on its agency's; an agency is pooled the same way toward the whole log.
SHRINK_ROWS: float = 5.0
#: A status value matching this (case-insensitive) marks a cancelled request: not a close (see the docstring).
CANCELLED = re.compile(r"cancel|void|withdr|duplicate|invalid|rejected", re.IGNORECASE)
#: A close stamped this little before its creation is clock skew and read as a close on creation (hours).
SKEW_H: float = 1.0 / 60.0
#: Length of each simulated run when a fit is checked against its log (days; :func:`simulate`).
CHECK_DAYS: float = 120.0
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
    """The time-to-close fit of one group of rows (a category or an agency). Hours throughout.

    ``phases`` is what the scenario uses: a mixture of lognormal phases fitted to the group's distribution
    after hierarchical pooling (``own_weight`` is the weight on the group's own rows, the rest on its
    agency's or the whole log's). ``median_h``/``sigma`` summarise the group by one lognormal (the fit kept
    for the report and for comparisons; ``ks_lognormal`` is its KS distance). ``ks`` is the
    Kolmogorov–Smirnov distance between the scenario's distribution and the group's own Kaplan–Meier
    distribution; ``observed``/``fitted`` hold the figures of :func:`figures` for both.
    """

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
    phases: Mixture | None = None
    open_rows: int = 0
    own_weight: float = 1.0
    ks_lognormal: float = float("nan")
    observed: dict[str, float] = field(default_factory=dict)
    fitted: dict[str, float] = field(default_factory=dict)
    observed_dist: Dist | None = field(default=None, repr=False)

    @property
    def mu(self) -> float:
        return math.log(self.median_h)

    @property
    def p90_h(self) -> float:
        """90th percentile of the scenario's distribution (hours)."""
        return self.phases.quantile(0.9) if self.phases is not None else self.lognormal_p90_h

    @property
    def lognormal_p90_h(self) -> float:
        """90th percentile of the one-lognormal summary (hours)."""
        return self.median_h * math.exp(1.2815515655446004 * self.sigma)

    @property
    def mean_h(self) -> float:
        """Mean of the scenario's distribution (hours)."""
        return self.phases.mean_h if self.phases is not None else self.median_h * math.exp(self.sigma**2 / 2)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        """P(closed within ``t`` hours) under the scenario's distribution."""
        if self.phases is not None:
            return self.phases.cdf(t)
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
    horizon: str = ""
    open_rows: int = 0
    observed: dict[str, float] = field(default_factory=dict)
    fitted: dict[str, float] = field(default_factory=dict)
    category_keys: dict[str, str] = field(default_factory=dict)
    observed_dist: Dist | None = None
    other_key: str | None = None

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
            o, f = self.observed, self.fitted
            L.append(f"Time to close with the still-open censored at the horizon {self.horizon} (Kaplan–Meier; "
                     f"{self.open_rows} open rows):")
            L.append(f"  log:      median {o['median_h']:.1f} h, p90 {o['p90_h']:.1f} h, within 24 h "
                     f"{o['within_24h']:.1%}, within 7 days {o['within_7d']:.1%}")
            L.append(f"  scenario: median {f['median_h']:.1f} h, p90 {f['p90_h']:.1f} h, within 24 h "
                     f"{f['within_24h']:.1%}, within 7 days {f['within_7d']:.1%}")
        for title, fits in (("Per category", self.categories), ("Per agency (report only)", self.agencies)):
            if not fits:
                continue
            L.append(f"{title} (hours; med/p90 of the log (Kaplan–Meier) and of the scenario's mixture of lognormal "
                     "phases; own = weight on the group's own rows after pooling; KS = Kolmogorov–Smirnov distance "
                     "scenario vs log; sigma and KS1 = the one-lognormal summary)")
            L.append(f"  {'name':<34}{'rows':>7}{'share':>7}{'med':>9}{'fit':>9}{'p90':>9}{'fit':>9}{'phases':>7}"
                     f"{'own':>5}{'KS':>6}{'sigma':>6}{'KS1':>6}{'due h':>8}{'on time':>8}{'fit':>6}")
            for key, f in fits.items():
                share = self.category_share.get(key, f.rows / max(self.rows_used, 1))
                mark = "*" if f.due_rule == "equivalent" else " "
                due = f"{f.deadline_hours:7.0f}{mark}" if f.deadline_hours else f"{'-':>8}"
                ot = f"{f.on_time_share:8.1%}" if f.on_time_share is not None else f"{'-':>8}"
                fot = f"{f.fitted_on_time_share:6.1%}" if f.fitted_on_time_share is not None else f"{'-':>6}"
                name = f.label if len(f.label) <= 33 else f.label[:32] + "…"
                k = len(f.phases.weights) if f.phases is not None else 1
                L.append(f"  {name:<34}{f.rows:>7}{share:>7.1%}{f.empirical_median_h:>9.2f}"
                         f"{f.fitted.get('median_h', f.median_h):>9.2f}{f.empirical_p90_h:>9.1f}{f.p90_h:>9.1f}"
                         f"{k:>7}{f.own_weight:>5.2f}{f.ks:>6.3f}{f.sigma:>6.2f}{f.ks_lognormal:>6.2f}{due}{ot}{fot}")
        L.append(f"Staff per bureau: {self.staff_per_bureau} (one bureau per category; no queue: P(all busy) < "
                 f"{SATURATION_RISK:g} at the mixture's mean service time); run.days {self.run_days:g}")
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


# ------------------------------------------------------------------------------------- distributions
@dataclass
class Dist:
    """A time-to-close distribution (hours): probability masses ``p`` at sorted times ``t`` plus ``rest``,
    the probability of still being open after ``follow_h``, the longest follow-up behind the estimate.

    Built by :func:`kaplan_meier` from closed and still-open rows, or by mixing other distributions
    (:meth:`mix`, used for pooling and for shrinking sparse categories). ``n`` is the number of rows behind it.
    """

    t: np.ndarray
    p: np.ndarray
    rest: float
    follow_h: float
    n: int

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """P(closed within ``x`` hours)."""
        c = np.concatenate([[0.0], np.cumsum(self.p)])
        return c[np.searchsorted(self.t, np.asarray(x, dtype=float), side="right")]

    def quantile(self, q: float) -> float:
        """The smallest time (hours) by which a share ``q`` is closed; NaN when the follow-up is too short."""
        c = np.cumsum(self.p)
        if len(c) == 0 or q > c[-1] + 1e-12:
            return float("nan")
        return float(self.t[min(int(np.searchsorted(c, q - 1e-12, side="left")), len(c) - 1)])

    @staticmethod
    def mix(parts: list[tuple[float, Dist]]) -> Dist:
        """The mixture ``sum w_k D_k`` (weights renormalised to 1)."""
        parts = [(w, d) for w, d in parts if w > 0]
        tot = sum(w for w, _ in parts)
        t = np.concatenate([d.t for _, d in parts])
        p = np.concatenate([d.p * (w / tot) for w, d in parts])
        order = np.argsort(t, kind="stable")
        return Dist(t[order], p[order], float(sum(d.rest * w / tot for w, d in parts)),
                    float(max(d.follow_h for _, d in parts)), int(sum(d.n for _, d in parts)))


def kaplan_meier(hours: np.ndarray, closed: np.ndarray) -> Dist:
    """Kaplan–Meier estimate of the time to close from durations in hours: for closed rows the time to
    close, for rows still open the time they had been open at the log's horizon (right-censored)."""
    d = np.asarray(hours, dtype=float)
    e = np.asarray(closed, dtype=bool)
    if len(d) == 0:
        return Dist(np.zeros(0), np.zeros(0), 1.0, 0.0, 0)
    order = np.lexsort((~e, d))  # at tied times closes come before censorings (the usual convention)
    d, e = d[order], e[order]
    at_risk = len(d) - np.arange(len(d))
    surv = np.cumprod(1.0 - e / at_risk)
    mass = -np.diff(np.concatenate([[1.0], surv]))
    return Dist(d[e], mass[e], float(surv[-1]), float(d.max()), len(d))


def figures(dist: Dist | Mixture) -> dict[str, float]:
    """The figures the issue judges a time-to-close distribution by: median and 90th percentile (hours),
    shares closed within 24 hours and within 7 days (0–1)."""
    return {"median_h": dist.quantile(0.5), "p90_h": dist.quantile(0.9),
            "within_24h": float(dist.cdf(24.0)), "within_7d": float(dist.cdf(168.0))}


def ks_between(a: Dist | Mixture, b: Dist) -> float:
    """Kolmogorov–Smirnov distance between a (fitted or simulated) distribution and an empirical one,
    over the times both are followed up (closes under one minute count as one minute)."""
    pts = np.unique(np.maximum(np.concatenate([b.t, getattr(a, "t", np.zeros(0))]), FLOOR_H))
    pts = pts[pts <= min(b.follow_h, getattr(a, "follow_h", np.inf)) + 1e-9]
    if len(pts) == 0:
        return float("nan")
    fa, fb = np.asarray(a.cdf(pts), dtype=float), np.asarray(b.cdf(pts), dtype=float)
    # left limits too, for the step functions' jumps
    eps = pts * (1 - 1e-9)
    fa_l, fb_l = np.asarray(a.cdf(eps), dtype=float), np.asarray(b.cdf(eps), dtype=float)
    return float(max(np.abs(fa - fb).max(), np.abs(fa_l - fb_l)[pts > FLOOR_H].max(initial=0.0)))


@dataclass
class Mixture:
    """A mixture of lognormal phases: what the scenario gives one category (weights 0–1, medians in hours,
    log-sds). The model draws a phase with probability ``weight`` and a service time from its lognormal."""

    weights: np.ndarray
    medians_h: np.ndarray
    sigmas: np.ndarray

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        x = np.maximum(np.asarray(x, dtype=float), 1e-300)
        z = (np.log(x)[..., None] - np.log(self.medians_h)) / self.sigmas
        return special.ndtr(z) @ self.weights

    def quantile(self, q: float) -> float:
        def f(log_t: float) -> float:
            return float(self.cdf(math.exp(log_t))) - q

        lo, hi = math.log(1e-9), math.log(1e9)
        return math.exp(optimize.brentq(f, lo, hi, xtol=1e-10)) if f(lo) < 0 < f(hi) else float("nan")

    @property
    def mean_h(self) -> float:
        return float(np.sum(self.weights * self.medians_h * np.exp(self.sigmas**2 / 2)))

    @staticmethod
    def combine(parts: list[tuple[float, Mixture]]) -> Mixture:
        tot = sum(w for w, _ in parts)
        return Mixture(np.concatenate([m.weights * w / tot for w, m in parts]),
                       np.concatenate([m.medians_h for _, m in parts]), np.concatenate([m.sigmas for _, m in parts]))


# ------------------------------------------------------------------------------------------ fitting
def _log_moments(lo: float, hi: float, t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> tuple[float, float, float]:
    """Mass, mean and sd of log hours of the atoms between cumulative probabilities ``lo`` and ``hi``
    (atoms cut at the edges keep the part inside); ``c0``/``c1``: cumulative probability before/after each atom."""
    w = np.clip(np.minimum(c1, hi) - np.maximum(c0, lo), 0.0, None)
    m = float(w.sum())
    if m <= 0:
        return 0.0, float("nan"), float("nan")
    x = np.log(t)
    mean = float(np.dot(w, x) / m)
    sd = math.sqrt(max(float(np.dot(w, (x - mean) ** 2) / m), 0.0))
    return m, mean, sd


def _tail_lognormal(t: np.ndarray, c: np.ndarray, top: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal fitted to the upper half of a distribution (log hours against normal
    scores of the cumulative probabilities ``c`` at atoms ``t``, conditional probabilities 0.5 … ``top``)."""
    q = np.linspace(0.5, min(top, TAIL_TOP), 25)
    idx = np.minimum(np.searchsorted(c, q - 1e-12, side="left"), len(t) - 1)
    x, z = np.log(t[idx]), special.ndtri(q)
    if len(np.unique(x)) < 2:
        xs = np.log(t)
        return float(x[-1]), float(min(max(np.std(xs), SIGMA_MIN), SIGMA_MAX)) if len(xs) > 1 else SIGMA_MIN
    slope, icept = np.polyfit(z, x, 1)
    return float(icept), float(min(max(slope, SIGMA_MIN), SIGMA_MAX))


def fit_phases(dist: Dist, deadline_h: float | None = None, key_times: tuple[float, ...] = (),
               on_time: float | None = None) -> Mixture:
    """The scenario's representation of a time-to-close distribution: a mixture of lognormal phases.

    One phase holds the closes under one minute. The rest of the distribution is cut at fixed conditional
    probabilities (:data:`PHASE_CUTS`, and where it reaches 24 h, 7 days, the due time and ``key_times``,
    so that no slice straddles those times); each slice becomes a lognormal with the slice's mean and sd of log
    hours. The slice above the last cut, and the mass still open at the end of the follow-up, become the
    tail phase: a lognormal fitted to the upper half of the distribution, taken beyond the last cut (its
    truncated log mean and log sd), so that small categories and censored logs keep a tail. The phases'
    weights are then refitted by non-negative least squares to the empirical CDF, with extra weight at
    one minute, 24 h, 7 days, the due time and ``key_times`` (hours; the whole log's median and 90th
    percentile), so that the mixture follows the distribution and not only its slices, and the categories
    together keep the log's figures. At the due time the target is ``on_time`` when given (the share of
    rows with a due date closed by it), so that the on-time share is kept.
    """
    inst = float(dist.p[dist.t < FLOOR_H].sum())
    keep = dist.t >= FLOOR_H
    t, p = dist.t[keep], dist.p[keep]
    meds: list[float] = []
    sigs: list[float] = []
    if inst > 0:
        meds.append(FLOOR_H / 6.0)
        sigs.append(0.3)
    body = 1.0 - inst
    if body > 1e-9 and len(t):
        c1 = np.cumsum(p) / body
        c0 = c1 - p / body
        top = float(c1[-1])  # conditional share closed within the follow-up
        mu_t, s_t = _tail_lognormal(t, c1, top)
        keys_h = [24.0, 168.0, *([deadline_h] if deadline_h else []), *key_times]
        at_keys = [float((dist.cdf(k) - inst) / body) for k in keys_h if math.isfinite(k) and k > FLOOR_H]
        cuts = [0.0]
        for c in sorted({*PHASE_CUTS, *at_keys}):
            if cuts[-1] + 0.02 < c < top - 0.02:
                cuts.append(c)
        edges = [*cuts, top]
        for lo, hi in zip(edges[:-2], edges[1:-1], strict=True):
            m, mean, sd = _log_moments(lo, hi, t, c0, c1)
            if m > 0:
                meds.append(math.exp(mean))
                sigs.append(min(max(sd, SIGMA_MIN), SIGMA_MAX))
        # the tail: the fitted lognormal beyond the last cut
        t_c = math.log(t[min(int(np.searchsorted(c1, cuts[-1] - 1e-12)), len(t) - 1)]) if cuts[-1] > 0 else -np.inf
        z = (t_c - mu_t) / s_t
        if z < 8:
            lam = float(math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / max(special.ndtr(-z), 1e-300)) \
                if np.isfinite(z) else 0.0
            zz = 0.0 if not np.isfinite(z) else z
            meds.append(math.exp(mu_t + s_t * lam))
            sigs.append(min(max(s_t * math.sqrt(max(1 + zz * lam - lam * lam, 0.0)), SIGMA_MIN), SIGMA_MAX))
        else:  # the fitted tail lies wholly below the last cut: use the slice itself
            m, mean, sd = _log_moments(cuts[-1], top, t, c0, c1)
            meds.append(math.exp(mean))
            sigs.append(min(max(sd, SIGMA_MIN), SIGMA_MAX))
    med_a, sig_a = np.array(meds), np.array(sigs)
    if len(med_a) == 1:
        return Mixture(np.ones(1), med_a, sig_a)
    # weights: NNLS on the CDF at (up to MAX_FIT_POINTS) atoms, mid-step targets, plus the key times
    pts = np.unique(np.maximum(dist.t, FLOOR_H))
    if len(pts) > MAX_FIT_POINTS // 4:
        pts = np.quantile(pts, np.linspace(0, 1, MAX_FIT_POINTS // 4), method="inverted_cdf")
    target = 0.5 * (dist.cdf(pts) + dist.cdf(pts * (1 - 1e-9)))
    key = np.array([FLOOR_H * (1 - 1e-9), 24.0, 168.0, *([deadline_h] if deadline_h else []),
                    *[k for k in key_times if k > FLOOR_H and math.isfinite(k)]])
    key = key[key <= dist.follow_h + 1e-9]
    pts = np.concatenate([pts, key])
    key_target = dist.cdf(key)
    if deadline_h is not None and on_time is not None:
        key_target[key == deadline_h] = on_time
    target = np.concatenate([target, key_target])
    row_w = np.concatenate([np.ones(len(pts) - len(key)), np.full(len(key), math.sqrt(len(pts)))])
    comp = Mixture(np.ones(len(med_a)), med_a, sig_a)
    basis = special.ndtr((np.log(pts)[:, None] - np.log(comp.medians_h)) / comp.sigmas)
    big = 10.0 * math.sqrt(len(pts))
    a = np.vstack([basis * row_w[:, None], big * np.ones((1, len(med_a)))])
    b = np.concatenate([target * row_w, [big]])
    w, _ = optimize.nnls(a, b)
    w[w < 1e-4] = 0.0
    w = w / w.sum()
    nz = w > 0
    return Mixture(w[nz], med_a[nz], sig_a[nz])


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


def group_distribution(g: pd.DataFrame) -> Dist:
    """Kaplan–Meier distribution of the time to close (hours) of a group of rows: closed rows (``hours``)
    are closes, still-open rows (``open_h``) are censored at the horizon; cancelled and unusable rows
    (both NaN) are left out."""
    closed = g["hours"].notna().to_numpy()
    opened = g["open_h"].notna().to_numpy() & ~closed
    d = np.where(closed, g["hours"].to_numpy(float), g["open_h"].to_numpy(float))
    use = closed | opened
    return kaplan_meier(d[use], closed[use])


def _fit_group(name: str, label: str, g: pd.DataFrame, fallback: ServiceFit | None,
               pooled: Dist | None = None, own_weight: float = 1.0,
               key_times: tuple[float, ...] = ()) -> ServiceFit:
    """Fit one group of rows: columns ``hours`` (NaN if not closed), ``open_h`` (NaN unless still open),
    ``due_h`` (NaN if no due), ``on_time``. ``pooled`` is the group's distribution after hierarchical pooling
    (its own Kaplan–Meier distribution when omitted), the one the scenario's phases are fitted to."""
    hours = g["hours"].dropna().to_numpy(float)
    own = group_distribution(g)
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
    instant = float(np.mean(hours < FLOOR_H)) if len(hours) else float("nan")
    if len(hours) >= MIN_FIT_ROWS:
        med, sigma, method = _fit_lognormal(hours, deadline, on_time, due_rows)
    elif fallback is not None:
        med, sigma, method = fallback.median_h, fallback.sigma, f"whole log (only {len(hours)} closed rows)"
    else:
        raise LogError(f"only {len(hours)} rows with a usable close date: at least {MIN_FIT_ROWS} are needed "
                       "to fit a service-time distribution")
    target = pooled if pooled is not None else own
    if own.n == 0 and fallback is not None and fallback.phases is not None:
        phases = fallback.phases
    else:
        phases = fit_phases(target, deadline, key_times, on_time if due_rows >= MIN_FIT_ROWS else None)
    obs = figures(own)
    fit = ServiceFit(
        name=name, label=label, rows=len(g), closed=len(hours), median_h=med, sigma=sigma,
        empirical_median_h=obs["median_h"], empirical_p90_h=obs["p90_h"],
        ks=ks_between(phases, own) if own.n else float("nan"), instant_share=instant,
        due_rows=due_rows, deadline_hours=deadline, median_due_h=median_due, due_rule=rule,
        on_time_share=on_time, method=method, phases=phases, open_rows=int(g["open_h"].notna().sum()),
        own_weight=own_weight, ks_lognormal=ks_distance(hours, med, sigma) if len(hours) else float("nan"),
        observed=obs, fitted=figures(phases), observed_dist=own)
    if deadline is not None and on_time is not None:
        fit.fitted_on_time_share = float(fit.cdf(deadline))
    return fit


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
    horizon = data.attrs["horizon"]
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
        command=_command(log, columns, out, date_format, hourly, top_categories, days),
        horizon=horizon.isoformat(sep=" "), open_rows=int(data["open_h"].notna().sum()),
        category_keys={**({k: cats.other_key for k in data["category"].unique()} if "category" in data
                          and cats.other_key else {}), **cats.key_of},
        other_key=cats.other_key)
    if len(closed_h):
        fit_obj.observed_dist = group_distribution(data)
        fit_obj.observed = figures(fit_obj.observed_dist)
        mix = scenario_mixture(fits, cats.share)
        fit_obj.fitted = figures(mix) if mix is not None else {}
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
        "missing": "closed: missing (still open)",
        "effect": "counted as an arrival; open at the horizon (right-censored)"})
    horizon = data["created"].max()
    if "closed" in parsed:
        horizon = max(horizon, parsed["closed"][used].max()) if parsed["closed"][used].notna().any() else horizon
    data.attrs["horizon"] = horizon
    # still open: open from created until the log's horizon (a right-censored time to close)
    still_open = (df.loc[used, "closed"] == "") if "closed" in df else pd.Series(False, index=data.index)
    if "status" in df:
        status = df.loc[used, "status"]
        cancelled = status.str.contains(CANCELLED, na=False)
        values = sorted(status[cancelled].unique())
        rejects.count("status: cancelled", cancelled,
                      f"counted as an arrival, not in the time to close ({', '.join(map(repr, values[:4]))})")
        data.loc[cancelled, "hours"] = np.nan
        still_open &= ~cancelled
    data["open_h"] = ((horizon - data["created"]).dt.total_seconds() / 3600.0).where(still_open)
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
    if role == "closed":
        # a close stamped with a date only (midnight) on the day of creation, or a few seconds early:
        # closed on creation (0 h), not an impossible row
        same_day = (h < 0) & (when == when.dt.normalize()) & (when == data["created"].dt.normalize())
        skew = (h < 0) & (h >= -SKEW_H) & ~same_day
        rejects.count("closed: date only, same day", same_day, "read as closed on creation (0 h)")
        rejects.count("closed: seconds before created", skew, "read as closed on creation (0 h)")
        h = h.where(~(same_day | skew), 0.0)
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


def _agency_priors(data: pd.DataFrame, whole: Dist) -> dict[str, Dist]:
    """Each agency's distribution pooled toward the whole log's: ``n/(n+k)·own + k/(n+k)·whole`` with
    k = :data:`SHRINK_ROWS` and n its rows with a close or still open."""
    out: dict[str, Dist] = {}
    if "agency" in data:
        for a, g in data.groupby("agency", sort=True):
            own = group_distribution(g)
            out[str(a)] = Dist.mix([(own.n, own), (SHRINK_ROWS, whole)]) if own.n else whole
    return out


def _pooled(g: pd.DataFrame, whole: Dist, priors: dict[str, Dist]) -> tuple[Dist, float]:
    """Hierarchical pooling of one category: ``n/(n+k)·own + k/(n+k)·prior`` (k = :data:`SHRINK_ROWS`, n its
    rows with a close or still open), the prior being its rows' agencies' pooled distributions (mixed by
    rows) or the whole log's. A large category keeps its own distribution; a sparse one borrows its
    agency's, and through it the whole log's. Returns the pooled distribution and the weight on its own."""
    own = group_distribution(g)
    prior = whole
    if priors and "agency" in g:
        counts = g["agency"].value_counts()
        prior = Dist.mix([(float(n), priors.get(str(a), whole)) for a, n in counts.items()])
    if own.n == 0:
        return prior, 0.0
    return Dist.mix([(own.n, own), (SHRINK_ROWS, prior)]), own.n / (own.n + SHRINK_ROWS)


def _category_fits(data: pd.DataFrame, cats: _Categories,
                   notes: list[str]) -> tuple[dict[str, ServiceFit], ServiceFit | None]:
    """A service-time fit per category (phases fitted to its pooled distribution; the one-lognormal summary
    falls back on the whole log's for small ones) and the whole log's fit; ``({}, None)`` when the log has
    no usable close date."""
    if not data["hours"].notna().any():
        notes.append("no usable close dates: service times are the catalogue defaults, not from the log")
        return {}, None
    whole_dist = group_distribution(data)
    priors = _agency_priors(data, whole_dist)
    key_times = (whole_dist.quantile(0.5), whole_dist.quantile(0.9))
    whole = _fit_group("all", "all rows", data, None, whole_dist, key_times=key_times)
    fits: dict[str, ServiceFit] = {}
    for key in cats.keys:
        g = data[data["cat"] == key]
        pooled, w = _pooled(g, whole_dist, priors)
        fits[key] = _fit_group(key, cats.label_of[key], g, whole, pooled, w, key_times)
    return fits, whole


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


def scenario_mixture(fits: dict[str, ServiceFit], share: dict[str, float]) -> Mixture | None:
    """The time to close the whole scenario implies: its categories' phases mixed by category share."""
    parts = [(share[k], f.phases) for k, f in fits.items() if f.phases is not None and share.get(k, 0) > 0]
    return Mixture.combine(parts) if parts else None


def _implied_figures(fits: dict[str, ServiceFit], share: dict[str, float]) -> dict[str, float]:
    """What the fitted scenario implies: median and p90 time to close (hours) of the category mixture and
    the share closed on time (weighted by the categories' due rows)."""
    imp_med = imp_p90 = imp_on_time = float("nan")
    mix = scenario_mixture(fits, share)
    if mix is not None:
        imp_med, imp_p90 = mix.quantile(0.5), mix.quantile(0.9)
        fl = list(fits.values())
        dw = np.array([f.due_rows for f in fl], dtype=float)
        if dw.sum() > 0:
            imp_on_time = float(sum(d * (f.fitted_on_time_share or 0.0) for f, d in zip(fl, dw, strict=True))
                                / dw.sum())
    return {"implied_median_close_h": imp_med, "implied_p90_close_h": imp_p90,
            "implied_on_time_close_share": imp_on_time}


def _staff_per_bureau(fits: dict[str, ServiceFit], share: dict[str, float], requests_per_day: float,
                      notes: list[str]) -> int:
    """Staff so that no queue forms: the M/G/inf occupancy of each category's bureau is Poisson(arrivals per
    hour × mean service hours, the mean of the category's mixture of phases); P(all busy) < SATURATION_RISK.
    At most 100000."""
    staff = 1
    for key, f in fits.items():
        load = requests_per_day * share.get(key, 0.0) / 24.0 * f.mean_h
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
    """The scenario as a dict: one model category per log category (the kept ones and the pooled ``other``),
    its service time the category's mixture of lognormal phases (``service_time_dist: mixture``, the phases
    in ``service_time_phases``; a case draws its phase by weight), or one lognormal when it has one phase."""
    categories: dict[str, Any] = {}
    for key in [*key_of.values(), *([other_key] if other_key else [])]:
        cat: dict[str, Any] = {"share": _r(fit.category_share[key], 6), "jurisdiction": "prefecture",
                               "consultation_share": 0.0}
        f = fit.categories.get(key)
        if f is not None:
            ph = f.phases
            if ph is not None and len(ph.weights) > 1:
                cat["service_time_dist"] = "mixture"
                cat["service_time_phases"] = [
                    _Phase(weight=_r(w, 6), median_h=_r(m, 6), sigma=_r(sg, 6))
                    for w, m, sg in zip(ph.weights, ph.medians_h, ph.sigmas, strict=True)]
            else:
                cat["service_time_dist"] = "lognormal"
                cat["service_time_median_h"] = _r(float(ph.medians_h[0]) if ph is not None else f.median_h, 6)
                cat["service_time_sigma"] = _r(float(ph.sigmas[0]) if ph is not None else f.sigma, 6)
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
               "Service times: each category's time to close (Kaplan–Meier, requests still open censored at the "
               f"log's horizon {fit.horizon}; sparse categories pooled toward their agency) as a mixture of "
               "lognormal phases (service_time_dist: mixture; service_time_phases: weight, median_h, sigma; "
               "closes under one minute, slices of the distribution, a fitted lognormal tail): a case draws its "
               "phase by weight. deadline_hours = the median of due − created, or the equivalent due time where "
               "it varies within the category.")
    L += _wrap(f"staff per bureau = {fit.staff_per_bureau}: enough that no queue forms (M/G/inf occupancy at "
               "each category's mean service time, the mean of its mixture; P(all busy) < 1e-6).")
    bureaus = len(label_of)
    L += _wrap(f"Budget: {fit.staff_per_bureau * bureaus:,} department staff ({bureaus} bureaus, one per category, "
               "7×24); operators as the schema default (intake is instant); no inspections, no call-backs.")
    if fit.closed_rows and fit.observed and fit.fitted:
        o, f = fit.observed, fit.fitted
        due = f", {fit.on_time_close_share:.1%} closed by the due date" if fit.due_rows else ""
        idue = f", {fit.implied_on_time_close_share:.1%} by the due date" if fit.due_rows else ""
        L += _wrap(f"time to close, log (Kaplan–Meier): median {o['median_h']:.1f} h, p90 {o['p90_h'] / 24:.1f} "
                   f"days, {o['within_24h']:.1%} within 24 h, {o['within_7d']:.1%} within 7 days{due}; "
                   f"scenario: median {f['median_h']:.1f} h, p90 {f['p90_h'] / 24:.1f} days, "
                   f"{f['within_24h']:.1%} within 24 h, {f['within_7d']:.1%} within 7 days{idue}.")
    L += _wrap(f"run.days = {fit.run_days:g} simulated days.")
    L.append("# Categories (key: value in the log, rows, lognormal phases, Kolmogorov–Smirnov distance of the fit):")
    for key, label in label_of.items():
        f = fit.categories.get(key)
        ks = (f"{len(f.phases.weights)} phases, KS {f.ks:.3f}" if f is not None and f.phases is not None
              else "not fitted")
        n = f.rows if f is not None else round(fit.category_share.get(key, 0) * fit.rows_used)
        L += _wrap(f"{key}: {label}, {n} rows, {ks}")
    return "\n".join(L) + "\n"


class _FlowListDumper(yaml.SafeDumper):
    pass


class _Phase(dict):
    """One entry of ``service_time_phases``: written on one line (``- {weight: …, median_h: …, sigma: …}``)."""


def _repr_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    # lists of numbers on one line; a list of phases one phase per line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data,
                                     flow_style=not any(isinstance(x, dict) for x in data))


def _repr_phase(dumper: yaml.SafeDumper, data: _Phase) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


_FlowListDumper.add_representer(list, _repr_list)
_FlowListDumper.add_representer(_Phase, _repr_phase)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True, width=110)


# ------------------------------------------------------------------------------------ checking a fit
@dataclass
class Comparison:
    """Observed (log) against simulated (model runs) time to close: :func:`figures` of each, and per
    category the Kolmogorov–Smirnov distance between the simulated and the observed distribution."""

    observed: dict[str, float]
    simulated: dict[str, float]
    ks: dict[str, float]
    simulated_cases: int
    observed_rows: int

    def describe(self) -> str:
        o, s = self.observed, self.simulated
        L = [f"time to close, observed ({self.observed_rows} rows) vs simulated ({self.simulated_cases} cases):",
             f"  median        {o['median_h']:9.1f} h {s['median_h']:9.1f} h   ({s['median_h'] / o['median_h'] - 1:+.1%})",
             f"  90th pct      {o['p90_h']:9.1f} h {s['p90_h']:9.1f} h   ({s['p90_h'] / o['p90_h'] - 1:+.1%})",
             f"  within 24 h   {o['within_24h']:9.1%}   {s['within_24h']:9.1%}     "
             f"({100 * (s['within_24h'] - o['within_24h']):+.1f} points)",
             f"  within 7 days {o['within_7d']:9.1%}   {s['within_7d']:9.1%}     "
             f"({100 * (s['within_7d'] - o['within_7d']):+.1f} points)",
             "  KS per category (simulated vs observed): "
             + ", ".join(f"{k} {v:.3f}" for k, v in self.ks.items())]
        return "\n".join(L)


def simulate(fit: LogFit, seeds: tuple[int, ...] = (1, 2, 3), days: float | None = None,
             cases_per_run: int = 20000) -> tuple[Dist, dict[str, Dist], int]:
    """Run the written scenario and return the simulated time to close: overall and per category, as
    Kaplan–Meier distributions in hours, and the number of cases.

    Censoring is applied as in the log: a case still open when its run ends counts as open for
    (end − created) hours, exactly as a row still open at the log's horizon. ``days`` (default
    :data:`CHECK_DAYS`, so that slow categories can close) is each run's length; the arrival
    rate is scaled to about ``cases_per_run`` cases per run, and the staff with it so that still no queue
    forms (the time to close then does not depend on the rate).
    """
    from sim import load_scenario, run_scenario

    sc = load_scenario(fit.out)
    days = float(days if days is not None else CHECK_DAYS)
    rate = cases_per_run / days
    staff = max(_staff_per_bureau(fit.categories, fit.category_share, rate, []), fit.staff_per_bureau)
    sc = sc.with_overrides({"demand.requests_per_day": rate, "departments.staff.prefecture": staff})
    durations, closed, cats = [], [], []
    for seed in seeds:
        c = run_scenario(sc, seed=seed, days=days, warmup_days=0).cases
        created = c["created_h"].to_numpy(float)
        shut = c["closed_h"].to_numpy(float)
        done = np.isfinite(shut)
        durations.append(np.where(done, shut - created, days * 24.0 - created))
        closed.append(done)
        cats.append(c["category"].astype(str).to_numpy())
    d, e, k = np.concatenate(durations), np.concatenate(closed), np.concatenate(cats)
    per = {key: kaplan_meier(d[k == key], e[k == key]) for key in fit.category_share if (k == key).any()}
    return kaplan_meier(d, e), per, len(d)


def observed_distributions(log: str, columns: dict[str, str], date_format: str | None = None,
                           category_keys: dict[str, str] | None = None,
                           other_key: str | None = None) -> tuple[Dist, dict[str, Dist], int]:
    """The time to close recorded in a log (Kaplan–Meier, hours; still-open rows censored at the log's
    horizon, cancelled rows left out), overall and per category key (``category_keys`` maps the log's
    category values to keys; values not in it go to ``other_key``, the fit's pooled category, when there is
    one: give :attr:`LogFit.other_key`; without it, a key starting with ``other`` that no log value is
    named after). Also the rows used."""
    path = Path(log)
    columns = _check_roles(dict(columns), "columns")
    df = _read_log(path, columns)
    parsed, _ = _parse_date_columns(df, path, columns, date_format)
    data = _usable_rows(df, parsed, path, columns, _Rejects())
    per: dict[str, Dist] = {}
    if category_keys is not None and "category" in data:
        other = other_key or next((v for k, v in category_keys.items() if v.startswith("other")
                                   and _slug(k, set()) != v), None)
        key = data["category"].map(category_keys)
        if other is not None:
            key = key.fillna(other)
        for k, g in data.groupby(key, sort=False):
            per[str(k)] = group_distribution(g)
    whole = group_distribution(data)
    return whole, per, whole.n


def compare(fit: LogFit, observed: Dist | None = None, observed_by_category: dict[str, Dist] | None = None,
            seeds: tuple[int, ...] = (1, 2, 3), days: float | None = None, cases_per_run: int = 20000) -> Comparison:
    """Simulate ``fit``'s scenario (:func:`simulate`) and compare it with the log it was fitted to, or with
    other observed rows (e.g. held-out ones) when ``observed`` is given."""
    if observed is None:
        observed = fit.observed_dist
        observed_by_category = observed_by_category or {
            k: f.observed_dist for k, f in fit.categories.items() if f.observed_dist is not None}
    sim_all, sim_per, n = simulate(fit, seeds, days, cases_per_run)
    ks = {k: ks_between(sim_per[k], d) for k, d in (observed_by_category or {}).items() if k in sim_per and d.n}
    return Comparison(figures(observed), figures(sim_all), ks, n, observed.n)


def holdout_check(log: str, columns: dict[str, str], rows: int = 1000, seed: int = 1,
                  date_format: str | None = None, top_categories: int = 10, sim_seeds: tuple[int, ...] = (1, 2, 3),
                  days: float | None = None, cases_per_run: int = 20000,
                  workdir: str | None = None) -> tuple[LogFit, Comparison]:
    """Fit on a random subsample of ``rows`` rows of a log (``seed``) and judge the simulated time to close
    against the held-out rows (the rest of the log): the test of a small log with sparse categories."""
    import tempfile

    path = Path(log)
    columns = _check_roles(dict(columns), "columns")
    _read_log(path, columns)  # clear errors for a missing file or column
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not 10 <= rows < len(raw):
        raise LogError(f"{path}: the subsample must have 10 … {len(raw) - 1} rows, got {rows}")
    pick = np.zeros(len(raw), dtype=bool)
    pick[np.random.default_rng(seed).choice(len(raw), size=rows, replace=False)] = True
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        train, test = Path(tmp) / f"{path.stem}_fit{rows}.csv", Path(tmp) / f"{path.stem}_heldout.csv"
        raw[pick].to_csv(train, index=False)
        raw[~pick].to_csv(test, index=False)
        fit = calibrate_from_log(str(train), columns, str(Path(tmp) / "holdout.yaml"), date_format=date_format,
                                 top_categories=top_categories)
        obs, per, _ = observed_distributions(str(test), columns, date_format, fit.category_keys, fit.other_key)
        comparison = compare(fit, obs, per, sim_seeds, days, cases_per_run)
    return fit, comparison


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.logfit check LOG --columns … [--date-format F] [--out FILE]``: fit the log,
    simulate the scenario and print observed vs simulated time to close; ``holdout`` does the same for a
    random ``--rows``-row subsample judged on the held-out rows. Exit 2 with one message on bad input."""
    import argparse
    import sys
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m experiments.logfit", description=main.__doc__)
    ap.add_argument("mode", choices=["check", "holdout"])
    ap.add_argument("log")
    ap.add_argument("--columns", required=True)
    ap.add_argument("--date-format")
    ap.add_argument("--top-categories", type=int, default=10)
    ap.add_argument("--rows", type=int, default=1000, help="holdout: rows fitted (the rest are judged)")
    ap.add_argument("--seed", type=int, default=1, help="holdout: seed of the subsample")
    ap.add_argument("--out", help="check: the scenario file to write (default: a temporary file)")
    args = ap.parse_args(argv)
    try:
        cols = parse_columns(args.columns)
        if args.mode == "holdout":
            fit, comp = holdout_check(args.log, cols, args.rows, args.seed, args.date_format, args.top_categories)
            print(f"fitted on {args.rows} random rows (seed {args.seed}), judged on the other {comp.observed_rows}:")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                out = args.out or str(Path(tmp) / "check.yaml")
                fit = calibrate_from_log(args.log, cols, out, date_format=args.date_format,
                                         top_categories=args.top_categories)
                obs, per, _ = observed_distributions(args.log, cols, args.date_format, fit.category_keys,
                                                     fit.other_key)
                comp = compare(fit, obs, per)
        print(comp.describe())
    except WenzhengError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
