"""Typed, validated scenarios.

A scenario is a YAML file whose sections mirror the model: ``world``, ``demand``, ``citizens``, ``platform``,
``departments``, ``supervision``, ``policy``, ``kpi`` and ``run``. Files may ``extends:`` another file (a path
relative to the extending file); mappings are merged key by key, everything else is replaced. Command-line
overrides (``--set policy.response_mandate_hours=24``) are applied last and parsed as YAML scalars.

Every mistake a user can make in a file — malformed YAML, an unknown key, a wrong type, an out-of-range
value, a missing ``extends`` target — raises :class:`ScenarioError`, whose message names the file, the key
path and what is allowed. Nothing is silently accepted (all models forbid extra keys).

Units: times in hours unless the name says ``_days`` or ``_minutes``; shares and probabilities in 0–1;
rates per hour unless stated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from .catalogue import default_categories
from .errors import WenzhengError
from .yamlfiles import format_validation_error, read_yaml_mapping

Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveHours = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class ScenarioError(WenzhengError):
    """A scenario file or override is invalid. The message is meant for the user, as is."""


class Level(StrEnum):
    """The five levels of Chinese government, top to bottom."""

    CENTRAL = "central"
    PROVINCE = "province"
    PREFECTURE = "prefecture"
    COUNTY = "county"
    TOWNSHIP = "township"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


# --------------------------------------------------------------------------------------------- world
class World(_Strict):
    """The city: its administrative units and its people."""

    population: int = Field(
        20_000, ge=1, le=20_000_000, description="Citizen and enterprise requesters (agents). Zhengzhou ≈ 12.8 M.")
    enterprise_share: Share = Field(0.05, description="Share of requesters that are enterprises.")
    counties: int = Field(12, ge=1, le=200, description="County-level units (Zhengzhou: 12).")
    townships: int = Field(190, ge=1, le=5000, description="Township-level units in all (Zhengzhou ≈ 190–200).")
    urban_township_share: Share = Field(
        0.6, description="Share of townships that are urban streets (Zhengzhou urbanisation ≈ 80% of people).")
    urban_population_share: Share = Field(0.8, description="Share of people living in urban townships.")
    digital_access_urban: Share = Field(0.85, description="Internet access, urban (CNNIC 2024 ≈ 0.85).")
    digital_access_rural: Share = Field(0.66, description="Internet access, rural (CNNIC 2024 ≈ 0.66).")
    social_degree: int = Field(6, ge=0, le=100, description="Contacts whose trust a citizen listens to.")
    local_tie_share: Share = Field(0.8, description="Share of contacts living in the same township.")
    start_date: str = Field("2024-01-01", description="Calendar date of hour 0 (ISO), for weekdays/holidays.")
    holidays: list[str] = Field(
        default_factory=list, description="ISO dates on which offices are closed (beyond weekends).")

    @model_validator(mode="after")
    def _townships_cover_counties(self) -> World:
        if self.townships < self.counties:
            raise ValueError(f"townships ({self.townships}) must be at least counties ({self.counties})")
        return self


# -------------------------------------------------------------------------------------------- demand
class ServiceDist(StrEnum):
    LOGNORMAL = "lognormal"
    EXPONENTIAL = "exponential"
    MIXTURE = "mixture"


class ServicePhase(_Strict):
    """One lognormal component of a category's handling time (``service_time_dist: mixture``)."""

    weight: Annotated[float, Field(gt=0.0)] = Field(description="Relative weight (renormalised over the phases).")
    median_h: Annotated[float, Field(gt=0.0, le=1e6)] = Field(description="Median handling time (hours).")
    sigma: Annotated[float, Field(ge=0.0, le=5.0)] = Field(0.0, description="Lognormal shape (log-sd).")


class Category(_Strict):
    """One kind of problem in the catalogue (see ``sim/catalogue.py`` for the defaults and sources)."""

    share: Share = Field(description="Share of problems in this category (renormalised over the catalogue).")
    severity: Share = Field(0.5, description="How much the problem hurts (0–1); drives reporting and grievance.")
    difficulty: Share = Field(0.3, description="How hard it is to resolve (0–1); lowers resolution probability.")
    jurisdiction: Level = Field(Level.COUNTY, description="Level whose department handles it.")
    consultation_share: Share = Field(0.3, description="Share of requests that are consultations (answerable at intake).")
    service_time_dist: ServiceDist = ServiceDist.LOGNORMAL
    service_time_median_h: PositiveHours = Field(24.0, description="Median handling time once taken up (hours).")
    service_time_sigma: Annotated[float, Field(ge=0.0, le=5.0)] = Field(
        1.0, description="Lognormal shape (log-sd); ignored for exponential, whose mean is the median field.")
    service_time_phases: list[ServicePhase] | None = Field(
        None, min_length=1, max_length=32, description="service_time_dist mixture: the lognormal components "
        "(weight, median_h, sigma); a case's handling time comes from one of them, drawn by weight (e.g. a "
        "city's log fitted by calibrate-from-log).")
    deadline_working_days: Annotated[float, Field(gt=0, le=60)] = Field(
        5.0, description="Resolution deadline in working days (Shandong 2020: 5; online-inquiry rules 5–7).")
    deadline_hours: PositiveHours | None = Field(
        None, description="If set: the due time is this many elapsed hours after creation (overrides working days).")
    enterprise_weight: NonNegative = Field(1.0, description="Relative rate for enterprise requesters.")

    @model_validator(mode="after")
    def _phases(self) -> Category:
        if (self.service_time_dist == ServiceDist.MIXTURE) != (self.service_time_phases is not None):
            raise ValueError("service_time_phases and service_time_dist: mixture go together: give both or neither")
        return self

    @property
    def service_time_mean_h(self) -> float:
        """Mean handling time (hours)."""
        import math

        if self.service_time_dist == ServiceDist.EXPONENTIAL:
            return self.service_time_median_h
        if self.service_time_phases is not None:
            total = sum(p.weight for p in self.service_time_phases)
            return sum(p.weight * p.median_h * math.exp(p.sigma**2 / 2) for p in self.service_time_phases) / total
        return self.service_time_median_h * math.exp(self.service_time_sigma**2 / 2)


class Shock(_Strict):
    """A temporary change in the problem rate (e.g. a rain-storm: +55% volume, Binzhou 2021)."""

    start_day: NonNegative
    days: PositiveHours
    multiplier: Annotated[float, Field(ge=0.0, le=100.0)]
    categories: list[str] | None = Field(None, description="Affected categories; all when omitted.")


class Demand(_Strict):
    """Where problems come from."""

    problems_per_citizen_year: Annotated[float, Field(ge=0.0, le=1000.0)] = Field(
        0.6, description="Problems a citizen meets per year that could be reported (assumption, calibrated).")
    fixed_rate_per_hour: Annotated[float, Field(gt=0.0)] | None = Field(
        None, description="If set: reported requests arrive as a Poisson stream of this rate (per hour), "
        "flat in time, bypassing the population and the reporting decision (used by queue_check).")
    requests_per_day: Annotated[float, Field(gt=0.0)] | None = Field(
        None, description="If set: reported requests arrive as a Poisson stream with this mean per day, "
        "shaped by weekday_weights and hour_weights, bypassing the reporting decision (a city's log).")
    weekday_weights: list[Annotated[float, Field(ge=0.0)]] = Field(
        [1.15, 1.1, 1.05, 1.05, 1.0, 0.85, 0.8],
        min_length=7, max_length=7, description="Relative load Monday..Sunday (Baltimore: Mon–Thu high).")
    hour_weights: list[Annotated[float, Field(ge=0.0)]] = Field(
        [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.5, 1.0, 1.6, 1.9, 1.9, 1.7, 1.3, 1.5, 1.8, 1.8, 1.6, 1.4,
         1.2, 1.1, 1.0, 0.8, 0.5, 0.3],
        min_length=24, max_length=24, description="Relative load by hour of day (assumption: office peaks).")
    shocks: list[Shock] = Field(default_factory=list)
    categories: dict[str, Category] = Field(default_factory=default_categories)

    @field_validator("categories")
    @classmethod
    def _nonempty(cls, v: dict[str, Category]) -> dict[str, Category]:
        if not v:
            raise ValueError("the catalogue needs at least one category")
        if sum(c.share for c in v.values()) <= 0:
            raise ValueError("category shares must not all be zero")
        return v

    @model_validator(mode="after")
    def _profiles_positive(self) -> Demand:
        if sum(self.weekday_weights) <= 0 or sum(self.hour_weights) <= 0:
            raise ValueError("weekday_weights and hour_weights need a positive total")
        for s in self.shocks:
            for c in s.categories or []:
                if c not in self.categories:
                    raise ValueError(f"shock names unknown category {c!r}; known: {sorted(self.categories)}")
        return self


# ------------------------------------------------------------------------------------------ citizens
class Citizens(_Strict):
    """Behaviour of requesters: reporting, channel choice, judgement, trust (defaults: assumptions unless noted)."""

    behaviour: bool = Field(True, description="False: everyone reports online at once; no judgement, no reopening.")
    initial_trust: Share = Field(0.55, description="Mean trust in government at start (0–1).")
    initial_efficacy: Share = Field(0.6, description="Mean belief that reporting helps (0–1).")
    heterogeneity: Annotated[float, Field(ge=0.0, le=0.5)] = Field(0.12, description="Sd of initial trust/efficacy.")
    report_threshold: float = Field(0.05, description="Epstein-style threshold: report if severity×efficacy + report_trust_weight×(trust − 0.5) − cost > threshold.")
    report_noise: Annotated[float, Field(gt=0.0)] = Field(0.12, description="Logistic noise scale of the reporting rule.")
    report_trust_weight: NonNegative = Field(
        0.2, description="Propensity to report gained per unit of trust above 0.5 (assumption).")
    channel_cost_online: NonNegative = Field(0.05, description="Effort of reporting online (for people with access).")
    channel_cost_hotline: NonNegative = Field(0.1, description="Effort of calling the hotline.")
    channel_cost_offline: NonNegative = Field(0.35, description="Effort of an office visit.")
    channel_stickiness: NonNegative = Field(0.25, description="Extra utility of the channel that last satisfied.")
    channel_choice_scale: Annotated[float, Field(gt=0.0)] = Field(0.12, description="Logit scale of channel choice.")
    expected_response_h: PositiveHours = Field(72.0, description="Hours a citizen expects to wait for a reply.")
    satisfaction_resolved_weight: NonNegative = 0.75
    satisfaction_reply_weight: NonNegative = Field(
        0.3, description="Weight of a reasoned (not perfunctory) reply that did not resolve the problem.")
    satisfaction_timeliness_weight: NonNegative = 0.3
    satisfaction_perfunctory_penalty: NonNegative = 0.35
    satisfaction_threshold: float = Field(
        0.3244, description="Satisfied when the judgement score exceeds this (calibrated: central draw of the ABC posterior, experiments/posterior.yaml; data/posterior_behaviour.json).")
    satisfaction_noise: Annotated[float, Field(gt=0.0)] = 0.12
    trust_learning_rate: Share = Field(0.15, description="Weight of a new experience in trust.")
    efficacy_learning_rate: Share = Field(0.2, description="Weight of a new experience in efficacy.")
    social_influence: Share = Field(0.1, description="Share of a contact's daily trust change passed on.")
    trust_memory_days: Annotated[float, Field(gt=0.0)] = Field(
        90.0, description="Days over which an experience's effect on trust and efficacy fades by a factor e "
        "toward the requester's disposition (assumption).")
    patience_h: PositiveHours = Field(
        240.0, description="Hours without any reply after which a citizen escalates or gives up.")
    escalation_threshold: float = Field(0.35, description="Escalate if grievance = severity×(1−trust) − escalation_cost exceeds this (+noise).")
    escalation_noise: Annotated[float, Field(gt=0.0)] = 0.1
    escalation_cost: NonNegative = Field(
        0.05, description="Effort of petitioning the upper level, in grievance units, subtracted from the "
        "grievance (assumption).")
    escalation_risk: Share = Field(
        0.1, description="Chance the upper level dismisses an escalation: it does nothing and the requester "
        "learns a failure (assumption).")
    reopen_propensity: Share = Field(0.5, description="Chance an unsatisfied citizen asks to reopen (when allowed).")
    repeat_delay_days: Annotated[float, Field(gt=0.0)] = Field(
        7.0, description="Mean days before the owner of a problem left unsolved reconsiders reporting it again "
        "(exponential; assumption).")
    max_repeats: int = Field(3, ge=0, le=20, description="Most repeat reports of one problem after the first "
                             "(assumption; 0: nobody reports a problem twice).")
    channel_mix: dict[Literal["online", "hotline", "offline"], Share] | None = Field(
        None, description="If set: channels are drawn from this fixed mix instead of being chosen.")
    tattle_share: Share = Field(0.0, description="Share of requests that threaten to tell the upper level (Chen–Pan–Xu).")
    threat_escalation_shift: NonNegative = Field(
        0.2, description="A requester who threatened (to tell the upper level, or collective action) escalates at a "
        "threshold lower by this much: the threat is carried out more readily (assumption).")
    collective_threat_share: Share = Field(0.0, description="Share of requests that threaten collective action.")


# ------------------------------------------------------------------------------------------ platform
class Hours(StrEnum):
    ALWAYS = "7x24"
    OFFICE = "office"


class Channels(_Strict):
    online: bool = True
    hotline: bool = True
    offline: bool = True


class Platform(_Strict):
    """Intake (受理) and tracking (跟踪): the 12345 centre / ZZIC platform."""

    operators: int = Field(12, ge=1, le=100_000, description="Operators on duty per open hour.")
    handling_minutes: PositiveHours = Field(6.0, description="Mean minutes to take in one request (Beijing ≈ 6).")
    instant_intake: bool = Field(False, description="True: intake takes no time and never queues (queue_check).")
    offline_office_hours: bool = Field(
        True, description="Offline requests (office visits) arrive only in office hours; false for logs where "
        "'offline' means requests logged by staff at any time.")
    channels: Channels = Field(default_factory=Channels)
    direct_answer_share: Share = Field(
        0.9, description="Share of consultations the platform answers itself from its knowledge base.")
    classification_accuracy: Share = Field(0.92, description="Share of orders sent to the right department.")
    misroute_return_h: NonNegative = Field(16.0, description="Hours before a wrong department returns an order.")
    dispatch_delay_h: NonNegative = Field(2.0, description="Hours from acceptance to dispatch (Zhengzhou: 2 h → 5 min).")
    handover_delay_h: NonNegative = Field(
        8.0, description="Median hours each level adds when an order cascades down (assumption).")
    callback_delay_h: NonNegative = Field(24.0, description="Hours after the reply that the call-back survey happens.")
    callback_minutes: NonNegative = Field(
        3.0, description="Operator minutes per call-back survey (assumption).")
    callback_share: Share = Field(
        1.0, description="Share of replied cases the operators try to call back (when policy.callback).")
    callback_hours_per_day: NonNegative = Field(
        8.0, description="Operator hours a day set aside for call-backs; calls beyond it are not made that day.")
    max_bounces: int = Field(
        2, ge=0, le=10, description="Returns of one order after which its department may no longer bounce it "
        "(it must handle it, reply perfunctorily or sit on it).")


# --------------------------------------------------------------------------------------- departments
class QueueDiscipline(StrEnum):
    FIFO = "fifo"
    DEADLINE = "deadline"
    SUPERVISED = "supervised"


class Staffing(_Strict):
    prefecture: int = Field(6, ge=0, le=100_000, description="Staff (concurrent cases) per city bureau.")
    county: int = Field(4, ge=0, le=100_000, description="Staff per county bureau.")
    township: int = Field(3, ge=0, le=100_000, description="Staff per township office.")
    relay: int = Field(1, ge=0, le=100_000, description="Staff per relay desk: a bureau that passes orders on "
                       "in a cascade (the prefecture's, a county's, the province's counterpart).")


class StaffScale(_Strict):
    """Multipliers of the staff of every department at a level (after ``staff`` and ``staff_by_department``):
    a planner's lever (more or fewer staff at one level) without rewriting the planned staffing. Each
    department's staff becomes ``max(1, round(staff × scale))`` (a department with no staff keeps none)."""

    prefecture: Annotated[float, Field(ge=0.1, le=10.0)] = Field(
        1.0, description="Multiplier of the staff of the city's bureaus (and of provincial and central ones).")
    county: Annotated[float, Field(ge=0.1, le=10.0)] = Field(1.0, description="Multiplier for county bureaus.")
    township: Annotated[float, Field(ge=0.1, le=10.0)] = Field(1.0, description="Multiplier for township offices.")
    relay: Annotated[float, Field(ge=0.1, le=10.0)] = Field(1.0, description="Multiplier for relay desks.")


class Departments(_Strict):
    """Functional departments: staff (an input), calendar, and how they choose what to do with a case.

    A department weighs each action by its effort and the sanctions it expects from its own record
    (docs/ODD.md III.iv.8). Effort and sanctions share one unit: one case handled properly at no load = 1.
    """

    staff: Staffing = Field(default_factory=Staffing)
    staff_by_department: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=dict, description="Staff of named departments (graph node, e.g. 'dept:utilities@county:0'), "
        "overriding staff by level; `python run.py plan-staff` writes it.")
    staff_scale: StaffScale = Field(
        default_factory=StaffScale, description="Multipliers of the staff by level (1 = as planned); a lever "
        "of `python run.py optimise` and of designs (e.g. departments.staff_scale.county).")
    hours: Hours = Field(Hours.OFFICE, description="When departments take up new cases.")
    queue_discipline: QueueDiscipline = Field(
        QueueDiscipline.SUPERVISED, description="fifo (arrival order only), supervised (pressed cases first: "
        "reminded, supervised, escalated, reopened), or deadline (pressed first, then earliest due time).")
    effort_choice: bool = Field(True, description="False: every case is handled properly (no gaming, no neglect).")
    duty: NonNegative = Field(
        0.8998, description="Value a department puts on handling a case properly, in effort units (1 = one case "
        "handled properly at no load; calibrated: central draw of the ABC posterior, experiments/posterior.yaml; data/posterior_behaviour.json).")
    load_weight: NonNegative = Field(
        0.5, description="Effort cost grows by this share per waiting case per member of staff (assumption).")
    perfunctory_effort: NonNegative = Field(
        0.3, description="Effort of a reply that closes a case as solved without solving it (assumption).")
    bounce_effort: NonNegative = Field(
        0.3, description="Effort of returning an order as 'not our jurisdiction' (assumption).")
    cherry_gain: NonNegative = Field(
        0.2, description="Relief a department gets from a day of serving the easiest (shortest) cases first, per "
        "waiting case per member of staff, in effort units (assumption).")
    sign_effort: Annotated[float, Field(gt=0.0)] = Field(
        0.05, description="Effort of signing for (签收) a case at once under a mandate (assumption).")
    choice_noise: Annotated[float, Field(gt=0.0)] = Field(
        0.1366, description="Scale of the logit choice among actions, in effort units (calibrated: central draw of the ABC posterior, experiments/posterior.yaml; data/posterior_behaviour.json).")
    prior_strength: NonNegative = Field(
        20.0, description="Effective sample size (violations) of a department's prior beliefs; the same whatever "
        "the policies (assumption).")
    prior_catch: Share = Field(0.3, description="Prior chance that a violation of any kind is caught (assumption).")
    prior_sanction: NonNegative = Field(
        1.0, description="Prior sanction per caught violation, in effort units (assumption).")
    belief_memory_days: Annotated[float, Field(gt=0.0)] = Field(
        60.0, description="Days over which a department's record (and its prior) fades by a factor e.")
    perfunctory_reply_h: PositiveHours = Field(1.0, description="Hours a perfunctory reply takes.")
    relay_handling_h: NonNegative = Field(
        0.5, description="Median hours a relay's staff need to register an order and pass it on (lognormal; "
        "assumption).")
    relay_handling_sigma: NonNegative = Field(0.8, description="Log-sd of a relay's handling time (assumption).")
    relay_effort: NonNegative = Field(
        0.2, description="Effort of passing an order on at a relay, in effort units (1 = one case handled properly "
        "at no load; assumption: registering and forwarding is a small part of the work of handling).")
    resolution_intercept: float = Field(
        1.4966, description="Log-odds of solving a properly handled case of zero difficulty (calibrated: central draw of the ABC posterior, experiments/posterior.yaml; data/posterior_behaviour.json).")
    resolution_difficulty_weight: NonNegative = Field(3.0, description="Log-odds lost per unit of difficulty.")
    supervised_resolution_bonus: NonNegative = Field(
        1.0, description="Log-odds gained when a case is handled under supervision or escalation.")


# --------------------------------------------------------------------------------------- supervision
class Supervision(_Strict):
    """Observers' rules and the sanctions they impose (effort units, as in ``departments``)."""

    tracking_flag_sanction: NonNegative = Field(
        0.3, description="Sanction when tracking flags a passed deadline or a bounced order (assumption).")
    reminder_sanction: NonNegative = Field(0.3, description="Sanction of an inspection's reminder (ladder level 1).")
    order_sanction: NonNegative = Field(1.0, description="Sanction of a supervision order (level 2).")
    naming_sanction: NonNegative = Field(3.0, description="Sanction of public naming (level 3).")
    audit_sanction: NonNegative = Field(
        2.0, description="Sanction when an audit finds a perfunctory or falsely 'resolved' reply (assumption).")
    audit_accuracy: Share = Field(
        0.8, description="Chance an audit of a perfunctory reply finds it out (assumption).")
    audit_window_days: Annotated[float, Field(gt=0.0)] = Field(
        30.0, description="Audits sample cases replied to within this many days.")
    callback_sanction: NonNegative = Field(
        1.0, description="Sanction when a call-back finds a reply closed as solved that was not (assumption).")
    cherry_sanction: NonNegative = Field(
        1.0, description="Sanction when an inspection finds an overdue case waiting behind easier ones (assumption).")
    escalation_sanction: NonNegative = Field(
        2.0, description="Sanction when the upper level acts on an escalation (assumption).")
    ranking_bottom_sanction: NonNegative = Field(
        2.0, description="Sanction for each department in the bottom share of the monthly ranking (assumption).")
    ranking_bottom_share: Share = Field(0.1, description="Share of departments named at the bottom each month.")
    upper_level_weight: Share = Field(
        0.25, description="Weight, against a provincial or central department, of a sanction from the city's "
        "platform (tracking flags, call-back findings): the city has no authority above it (assumption).")
    hours_per_inspection: NonNegative = Field(
        0.5, description="Supervisor hours one inspection or audit takes (assumption).")


# -------------------------------------------------------------------------------------------- policy
class DispatchMode(StrEnum):
    CASCADE = "cascade"
    DIRECT = "direct"


class Policy(_Strict):
    """The levers planners pull."""

    response_mandate_hours: PositiveHours | None = Field(
        None, description="Sign-for deadline (hours); null = no mandate. Beijing/Zhengzhou: 24.")
    resolution_deadline_days: dict[str, Annotated[float, Field(gt=0, le=60)]] = Field(
        default_factory=dict, description="Per-category override of the resolution deadline (working days).")
    dispatch_mode: DispatchMode = DispatchMode.CASCADE
    platform_hours: Hours = Hours.ALWAYS
    tracking: bool = Field(True, description="Deadline reminders to departments (跟踪).")
    reminder_lead_h: NonNegative = Field(24.0, description="Hours before the due time that tracking reminds.")
    supervision_intensity: NonNegative = Field(
        20.0, description="Daily inspection budget of the city's supervision centre (督办), cases per day: overdue "
        "cases first, then audits of replied cases.")
    county_supervision_intensity: NonNegative = Field(
        0.0, description="Daily inspection budget of each county's supervision office, cases per day, over the "
        "departments of its county (county bureaus and township offices).")
    upper_supervision_intensity: NonNegative = Field(
        1.0, description="Daily inspection budget of the province's supervision office over provincial and "
        "central departments, cases per day (assumption); the city's office has no authority above the prefecture.")
    public_ranking: bool = Field(False, description="Monthly public ranking of departments on the three rates.")
    callback: bool = Field(True, description="Call-back survey after closure.")
    reopen_allowed: bool = Field(True, description="Unsatisfied citizens may have a case reopened.")
    max_reopens: int = Field(1, ge=0, le=10)
    systemic_fix: bool = Field(True, description="Aggregate repeated complaints into systemic fixes (网络问政→网络行政).")
    systemic_fix_threshold: int = Field(
        25, ge=1, description="Complaints in one (category, township) within the window that trigger a fix.")
    systemic_fix_window_days: int = Field(30, ge=1, le=365)
    systemic_fix_effect: Share = Field(0.5, description="Share by which a fix lowers that problem's rate.")
    systemic_fix_duration_days: int = Field(180, ge=1, le=3650)

    @field_validator("response_mandate_hours", mode="before")
    @classmethod
    def _none_words(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in {"none", "null", "off", ""}:
            return None
        return v


class PolicyChanges(Policy):
    """The ``set`` of one timeline entry: any keys of ``policy``, with the same types, ranges and defaults; only
    the keys given are changed (and only they are written back when the scenario is saved)."""

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class TimelineEntry(_Strict):
    """One dated change of policy during a run: from the start of its day (hour ``24 × day``, before that hour's
    new cases) the policy is the one in force with the keys of ``set`` replaced. Give exactly one of ``date``
    (ISO, a calendar date of the run) and ``day`` (days since ``world.start_date``; 0 is the first day)."""

    date: dt.date | None = Field(None, description="Calendar date (YYYY-MM-DD) from which the change applies.")
    day: int | None = Field(None, ge=0, description="Day of the run (since world.start_date) from which it applies.")
    set: PolicyChanges = Field(description="Policy keys and their new values (as in the policy section).")

    @model_validator(mode="after")
    def _one_date(self) -> TimelineEntry:
        if (self.date is None) == (self.day is None):
            raise ValueError("give exactly one of 'date' (YYYY-MM-DD) and 'day' (days since world.start_date)"
                             + (", not both" if self.date is not None else ""))
        if not self.set.model_fields_set:
            raise ValueError(f"'set' changes nothing; give at least one policy key: {', '.join(Policy.model_fields)}")
        return self

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        return {k: v for k, v in out.items() if k == "set" or v is not None}

    def day_of_run(self, start_date: str) -> int:
        """The day of the run (since ``start_date``) on which the change applies."""
        if self.day is not None:
            return self.day
        return (self.date - dt.date.fromisoformat(start_date)).days

    def changes(self) -> dict[str, Any]:
        """The policy keys this entry sets, with their validated values."""
        return {k: getattr(self.set, k) for k in self.set.model_fields_set}


class KPISettings(_Strict):
    response_target_h: PositiveHours = Field(
        24.0, description="Yardstick for on_time_response_rate, the same in every scenario (hours).")


class RunSettings(_Strict):
    days: Annotated[float, Field(gt=0, le=3650)] = Field(90, description="Simulated days after warm-up.")
    warmup_days: Annotated[float, Field(ge=0, le=3650)] = Field(
        0, description="Days simulated before measuring; cases created then are not counted.")
    seed: int = Field(1, ge=0, description="Seed of the run's random streams.")


class Scenario(_Strict):
    """A complete, validated scenario."""

    name: str = "default"
    description: str = ""
    world: World = Field(default_factory=World)
    demand: Demand = Field(default_factory=Demand)
    citizens: Citizens = Field(default_factory=Citizens)
    platform: Platform = Field(default_factory=Platform)
    departments: Departments = Field(default_factory=Departments)
    supervision: Supervision = Field(default_factory=Supervision)
    policy: Policy = Field(default_factory=Policy)
    kpi: KPISettings = Field(default_factory=KPISettings)
    run: RunSettings = Field(default_factory=RunSettings)
    timeline: list[TimelineEntry] = Field(
        default_factory=list, description="Dated policy changes applied during the run, in date order (see "
        "TimelineEntry); empty: the policy stays as set for the whole run.")

    @field_validator("timeline")
    @classmethod
    def _timeline_in_run(cls, v: list[TimelineEntry], info: ValidationInfo) -> list[TimelineEntry]:
        world, run = info.data.get("world"), info.data.get("run")
        if not v or world is None or run is None:
            return v
        start = dt.date.fromisoformat(world.start_date)
        n_days = run.warmup_days + run.days
        last = int(-(-n_days // 1)) - 1  # the last day of the run (warm-up included) on which a change can apply
        allowed = (f"allowed: dates from {start} (world.start_date) to {start + dt.timedelta(days=last)}, or days "
                   f"0 to {last} (the run's {n_days:g} days, warm-up included), each entry later than the one "
                   f"before")
        previous = None
        for i, entry in enumerate(v):
            day = entry.day_of_run(world.start_date)
            given = f"date {entry.date}, day {day}" if entry.date is not None else f"day {entry.day}"
            if day < 0 or day > last:
                where = "before the run starts" if day < 0 else "after the run ends"
                raise ValueError(f"entry {i} ({given}) is {where}; {allowed}")
            if previous is not None and day <= previous[1]:
                raise ValueError(f"entry {i} ({given}) is not later than entry {previous[0]} (day "
                                 f"{previous[1]}): entries must be in date order, one per day; {allowed}")
            previous = (i, day)
        return v

    @model_serializer(mode="wrap")
    def _timeline_if_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        if not self.timeline:  # a scenario without a timeline dumps (and fingerprints) as before timelines existed
            out.pop("timeline", None)
        return out

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        for where, deadlines in [("policy", self.policy.resolution_deadline_days)] + [
                (f"timeline.{i}.set", e.set.resolution_deadline_days) for i, e in enumerate(self.timeline)]:
            for c in deadlines:
                if c not in self.demand.categories:
                    raise ValueError(
                        f"{where}.resolution_deadline_days names unknown category {c!r}; "
                        f"known: {sorted(self.demand.categories)}")
        if self.demand.fixed_rate_per_hour is not None and self.demand.requests_per_day is not None:
            raise ValueError("demand: set at most one of fixed_rate_per_hour and requests_per_day")
        mix = self.citizens.channel_mix
        if mix is not None and sum(mix.values()) <= 0:
            raise ValueError("citizens.channel_mix: shares must have a positive total")
        ch = self.platform.channels
        if not (ch.online or ch.hotline or ch.offline):
            raise ValueError("platform.channels: at least one of online, hotline, offline must be open")
        return self

    def policy_changes(self) -> list[tuple[int, dict[str, Any]]]:
        """The timeline as (day of the run, {policy key: new value}) in date order."""
        return [(e.day_of_run(self.world.start_date), e.changes()) for e in self.timeline]

    def with_policy(self, changes: dict[str, Any]) -> Scenario:
        """The same scenario with these policy keys replaced (values as validated in a timeline entry)."""
        return self.model_copy(update={"policy": self.policy.model_copy(update=changes)})

    def deadline_days(self, category: str) -> float:
        """Resolution deadline of a category in working days, after policy overrides."""
        return self.policy.resolution_deadline_days.get(
            category, self.demand.categories[category].deadline_working_days)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dictionary (enums as strings)."""
        return json.loads(self.model_dump_json())

    def fingerprint(self) -> str:
        """Stable hash of the resolved scenario (seed included)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def with_overrides(self, overrides: dict[str, Any] | list[str] | None, source: str = "--set") -> Scenario:
        """A new scenario with dotted-path overrides applied and validated again."""
        data = self.to_dict()
        apply_overrides(data, parse_overrides(overrides, source), source)
        return validate(data, source)


# ------------------------------------------------------------------------------------------- loading
def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        return read_yaml_mapping(path, ScenarioError, "scenario", "of sections")
    except ScenarioError:
        raise
    except ValueError as exc:  # PyYAML builds unquoted dates itself and fails on an impossible one (2024-02-30)
        raise ScenarioError(f"{path}: malformed YAML: {exc} (a date must be a calendar date, YYYY-MM-DD)") from None


def _resolve(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ScenarioError(f"{path}: circular 'extends' chain: {chain}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{path}: key 'extends' must be a file path (string), got {parent!r}")
    parent_path = (path.parent / parent)
    if not parent_path.exists():
        raise ScenarioError(f"{path}: key 'extends': file {parent!r} not found (looked for {parent_path})")
    return _deep_merge(_resolve(parent_path, (*seen, path)), data)


def validate(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a plain dictionary into a :class:`Scenario` or raise :class:`ScenarioError`."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source, Scenario)) from None


def parse_overrides(overrides: dict[str, Any] | list[str] | None, source: str = "--set") -> dict[str, Any]:
    """Turn ``["a.b=1", ...]`` into ``{"a.b": 1}`` (values parsed as YAML scalars)."""
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"{source}: override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ScenarioError(f"{source}: override {item!r} has an empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key] = raw
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: str = "--set") -> None:
    """Set dotted keys in a nested dictionary in place. Unknown sections are caught by validation."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = {}
                node[part] = nxt
            if not isinstance(nxt, dict):
                prefix = ".".join(parts[: i + 1])
                raise ScenarioError(f"{source}: key '{dotted}': '{prefix}' is a value, not a section")
            node = nxt
        node[parts[-1]] = value


def load_scenario(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Scenario:
    """Read a scenario file (following ``extends``), apply overrides, validate.

    The scenario's ``name`` defaults to the file's stem.
    """
    path = Path(path)
    data = _resolve(path)
    data.setdefault("name", path.stem)
    src = str(path)
    try:
        scenario = validate(data, src)
    except ScenarioError:
        raise
    if overrides:
        parsed = parse_overrides(overrides)
        merged = scenario.to_dict()
        try:
            apply_overrides(merged, parsed)
        except ScenarioError as exc:
            raise ScenarioError(f"{src}: {exc}") from None
        scenario = validate(merged, f"{src} (with --set overrides)")
    return scenario
