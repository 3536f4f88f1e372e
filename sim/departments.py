"""Departments: staffed queues, their columnar state, beliefs learnt from their own record, and their choice.

A department holds ``staff`` servers (cases handled at once; an input of the scenario). It takes up a new
case only while it works (office hours, or 7×24), in the order its queue discipline says
(:mod:`sim.queues`), and handles it for the case's service time (elapsed hours).

What it does with a case that reaches it (docs/ODD.md III.iv.8) is a choice among four actions — handle it
properly, reply perfunctorily (close it as solved without solving it), sit on it, or bounce it back to
the platform as "not our jurisdiction" — by a logit over utilities in effort units (1 = one case handled
properly at no load):

    U(proper)      = duty − c(L) · w − q_late · E(late)   (w = 1; at a relay, passing the order on: relay_effort)
    U(perfunctory) = − c(L) · perfunctory_effort − E(perfunctory)
    U(sit)         = − E(late) − pressure
    U(bounce)      = − c(L) · bounce_effort − E(bounced)      (not once the order was returned max_bounces times)
    (a relay, which only passes orders on in a cascade, cannot reply: no perfunctory reply, no sign-for)
    c(L) = 1 + load_weight · L,   L = waiting cases per member of staff

E(kind) is the sanction the department expects per violation of that kind, for requests with or without
a threat: the sanctions it actually received for that kind, divided by the violations it committed, both
counted with exponential forgetting and starting from a prior of ``prior_strength`` pseudo-violations
caught with chance ``prior_catch`` at ``prior_sanction`` each (the same prior whatever the policies).
q_late is its own share of properly handled cases that were replied to late. Under a response mandate it
also decides whether to sign for the case at once: with chance 1 − exp(−max(E(unsigned) − sign_effort, 0) /
choice_noise).
Each department is a Mesa agent: at the end of a day the day's record enters every department's beliefs
(one array operation), then each department's ``step`` chooses whether to serve the easiest cases first the
next day (cherry-picking): with cases waiting, with
chance σ((cherry_gain · L − E(cherry)) / choice_noise); each such day is a violation in its record.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import Action, CaseStore, Violation
from .citizens import gumbel_noise
from .hierarchy import PREFECTURE_INDEX
from .queues import QueueBank

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel

#: (case ids, start times, completion times) of the cases a step started, in hours
Starts = tuple[np.ndarray, np.ndarray, np.ndarray]

N_KINDS = len(Violation)
_CHERRY = int(Violation.CHERRY)  # the violation code of cherry-picking (choose_order)
ACTIONS = (Action.PROPER, Action.PERFUNCTORY, Action.SIT, Action.BOUNCE)
_ACTION_CODES = np.asarray(ACTIONS, dtype=np.int8)  # the action of each column of the utilities
_UTILITY_KINDS = np.array([Violation.LATE, Violation.PERFUNCTORY, Violation.BOUNCED])  # the sanctions they weigh
_KIND_LATE, _KIND_PERF, _KIND_BOUNCED = (int(k) for k in _UTILITY_KINDS)
_KIND_UNSIGNED = int(Violation.UNSIGNED)
#: Cases up to which the plain-Python kernels compute the utilities and sign-for exponents in a loop (beyond,
#: the array code is faster)
_PLAIN_LOOP_UP_TO = 8


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Department(mesa.Agent):
    """A functional bureau or township office that handles cases of one category in one unit.

    Its staff serve its queue (queue ``index`` of :attr:`DepartmentTable.queues`); its load and beliefs live
    in :class:`DepartmentTable`.
    """

    def __init__(self, model: GovernanceModel, index: int, node: str, category: str, level: str,
                 staff: int) -> None:
        super().__init__(model)
        self.index = index
        self.node = node
        self.category = category
        self.level = level
        self.staff = staff

    def step(self) -> None:
        """The end of a day, after the day's record has entered its beliefs (:meth:`DepartmentTable.learn_all`):
        the department chooses whether to serve the easiest cases first tomorrow."""
        self.model.departments.choose_order(self.index, self.model)


class DepartmentTable:
    """The state of every department, one entry per department index (the department side's store).

    ``agents``: the :class:`Department` agents; ``staff`` (servers); ``queues`` (their queues, one per
    department: :class:`sim.queues.QueueBank`); ``waiting`` (cases queued and not yet started, arrivals of
    this step included); ``arrivals`` (this step's new queue
    entries, not yet handed to the queues); ``cancelled`` (cases withdrawn while still among this step's
    arrivals).

    Beliefs, per department × violation kind (:class:`~sim.cases.Violation`) × request class (0 plain,
    1 with a threat): ``committed`` (violations, with forgetting), ``caught`` (catches) and ``sanctions``
    (sanction units received); the day's new counts wait in ``today_*`` until the department's ``step``.
    ``late_num`` / ``late_den``: properly handled cases replied to late, of all properly handled (with
    forgetting).
    """

    def __init__(self, model: GovernanceModel, always_open: bool) -> None:
        s = model.settings.departments
        h = model.hierarchy
        self.discipline = s.queue_discipline
        self.agents = [Department(model, r.index, r.node, r.category, r.level.value, r.staff)
                       for r in h.departments]
        n = len(self.agents)
        self.staff = h.dept_staff
        self._staff_1 = np.maximum(self.staff, 1)  # staff, at least 1 (the divisor of the load)
        # one queue per department, its staff the servers (sim.queues)
        self.queues = QueueBank(self.staff, always_open, model.calendar, s.queue_discipline,
                                cases=model.cases.capacity, kernels=model.kernels)
        # the county each department belongs to (-1: prefecture level and above), for county supervision
        self.county = np.array([int(r.unit.split(":")[1]) if r.unit.startswith("county:")
                                else int(h.township_county[int(r.unit.split(":")[1])]) if r.unit.startswith("township:")
                                else -1 for r in h.departments], dtype=np.int64)
        self.waiting = np.zeros(n)
        self.received = np.zeros(n)  # cases that joined each department's queue so far
        self.relay = h.dept_relay  # relays pass orders on in a cascade; they never reply
        self.level = h.dept_level
        # a sanction from the city's platform weighs less with a department above the prefecture
        up = h.dept_level < PREFECTURE_INDEX
        self.city_weight = np.where(up, model.settings.supervision.upper_level_weight, 1.0)
        # queue waits of measured cases: hours from reaching the bureau to the start of work, and starts
        self.wait_h = np.zeros(n)
        self.starts = np.zeros(n)
        shape = (n, N_KINDS, 2)
        prior = s.prior_strength
        self.forget = math.exp(-1.0 / s.belief_memory_days)  # per day
        self.committed = np.full(shape, prior)
        self.caught = np.full(shape, prior * s.prior_catch)
        self.sanctions = np.full(shape, prior * s.prior_catch * s.prior_sanction)
        self.today_committed = np.zeros(shape)
        self.today_caught = np.zeros(shape)
        self.today_sanctions = np.zeros(shape)
        self.easy_first = self.queues.easy_first  # serving the shortest cases first (cherry-picking) today
        self.late_num = np.zeros(n)
        self.late_den = np.zeros(n)
        self.today_late_num = np.zeros(n)
        self.today_late_den = np.zeros(n)
        self.worked_to = -1.0  # the last t_end the queues were run to (h)
        self.arrivals: list[tuple[np.ndarray, np.ndarray]] = []
        self.cancelled: set[int] = set()

    def __len__(self) -> int:
        return len(self.agents)

    def load(self, depts: np.ndarray) -> np.ndarray:
        """Waiting cases per member of staff of each listed department."""
        return self.waiting[depts] / self._staff_1[depts]

    # ----------------------------------------------------------------------------------- queues
    def enqueue(self, ids: np.ndarray, times: np.ndarray, cases: CaseStore) -> None:
        """Cases join their departments' queues at ``times`` (handed to the queues by :meth:`work`)."""
        dept = cases.dept[ids]
        # a float 1.0: np.add.at's fast loop for a float column (an int 1 takes its slow, casting path)
        np.add.at(self.waiting, dept, 1.0)
        np.add.at(self.received, dept, 1.0)
        cases.queued_at[ids] = times  # the arrival time its queue key was made with
        self.arrivals.append((ids, times))

    def withdraw(self, ids: np.ndarray, cases: CaseStore) -> None:
        """Queued cases (unique ids) leave their queues (their requesters gave up)."""
        if len(ids) == 0:
            return
        dept = cases.dept[ids]
        left = self.queues.remove(dept, ids)
        self.cancelled.update(ids[~left].tolist())  # still among this step's arrivals
        np.add.at(self.waiting, dept, -1.0)

    def raise_priority(self, ids: np.ndarray, cases: CaseStore) -> None:
        """Queued cases move up their queues as their ``boost`` now says."""
        if len(ids) == 0:
            return
        dept = cases.dept[ids]
        work = np.where(self.relay[dept], cases.relay_time[ids], cases.service_time[ids])
        self.queues.raise_priority(dept, ids, cases.queued_at[ids], cases.due[ids], cases.boost[ids], work)

    def work(self, t_end: float, cases: CaseStore) -> Starts | None:
        """Departments with work take up cases until ``t_end`` (h); returns the cases started, or None.

        This step's arrivals (less those withdrawn meanwhile) join their queues, with their work time (a
        relay's time to pass the order on, or the service time), then every queue with work runs
        (:meth:`sim.queues.QueueBank.run`). A second call for the same ``t_end`` with no new arrivals is
        skipped: after a call every queue is empty, or all its servers are busy (or the office closed) past
        ``t_end``, so it could start nothing. Nor is a call with no arrivals in which no queue has cases waiting
        and a server free (or the office open) before ``t_end``.
        """
        if not self.arrivals and self.worked_to == t_end:
            return None
        self.worked_to = t_end
        if self.arrivals:
            if len(self.arrivals) == 1:
                ids, t = self.arrivals[0]
            else:
                ids = np.concatenate([a[0] for a in self.arrivals])
                t = np.concatenate([a[1] for a in self.arrivals])
            self.arrivals = []
            if self.cancelled:
                gone = np.isin(ids, np.fromiter(self.cancelled, dtype=np.int64, count=len(self.cancelled)))
                if gone.any():
                    self.cancelled.difference_update(ids[gone].tolist())
                    ids, t = ids[~gone], t[~gone]
        else:
            ids, t = np.zeros(0, dtype=np.int64), np.zeros(0)
        qb = self.queues
        if len(ids) == 0 and not (qb.active & ((qb.blocked < t_end) | (qb.nlive <= 0))).any():
            return None  # no arrivals, and no queue the run would look at (every one idle, or busy past t_end)
        dept = cases.dept[ids]
        work = np.where(self.relay[dept], cases.relay_time[ids], cases.service_time[ids])
        started, begun, done = qb.run(t_end, dept, ids, t, work, cases.due[ids], cases.boost[ids])
        if len(started) == 0:
            return None
        dept = cases.dept[started]
        np.add.at(self.waiting, dept, -1.0)
        measured = cases.measured[started]
        if measured.any():
            np.add.at(self.wait_h, dept[measured], begun[measured] - cases.held_since[started[measured]])
            np.add.at(self.starts, dept[measured], 1.0)
        return started, begun, done

    # ------------------------------------------------------------------------------------ beliefs
    def commit(self, depts: np.ndarray, kind: Violation, threat: np.ndarray) -> None:
        """Record violations of ``kind`` (one per entry) against their departments."""
        np.add.at(self.today_committed, (depts, int(kind), threat.astype(np.int64)), 1.0)

    def catch(self, depts: np.ndarray, kind: Violation, threat: np.ndarray, sanction: float | np.ndarray) -> None:
        """Record that an observer caught violations of ``kind`` and imposed ``sanction`` each (effort units; one
        value, or one per entry).

        A sanction of size 0 is no consequence at all: nothing is recorded.
        """
        if np.ndim(sanction):
            keep = np.asarray(sanction) > 0
            depts, threat, sanction = depts[keep], threat[keep], np.asarray(sanction)[keep]
        elif sanction <= 0:
            return
        if len(depts) == 0:
            return
        idx = (depts, int(kind), threat.astype(np.int64))
        np.add.at(self.today_caught, idx, 1.0)
        np.add.at(self.today_sanctions, idx, sanction)

    def catch_by_city(self, depts: np.ndarray, kind: Violation, threat: np.ndarray, sanction: float) -> None:
        """A catch by the city's platform (a tracking flag, a call-back finding): as :meth:`catch`, with the
        sanction weighted by ``supervision.upper_level_weight`` for departments above the prefecture."""
        if len(depts):
            self.catch(depts, kind, threat, sanction * self.city_weight[depts])

    def record_proper(self, depts: np.ndarray, late: np.ndarray) -> None:
        """Properly handled cases replied to: whether each was late (for the department's q_late)."""
        np.add.at(self.today_late_den, depts, 1.0)
        np.add.at(self.today_late_num, depts, late.astype(float))

    def learn_all(self) -> None:
        """Every department folds the day's record into its beliefs (what :meth:`learn` does for one, at once)."""
        f = self.forget
        for total, today in ((self.committed, self.today_committed), (self.caught, self.today_caught),
                             (self.sanctions, self.today_sanctions), (self.late_num, self.today_late_num),
                             (self.late_den, self.today_late_den)):
            total *= f
            total += today
            today[:] = 0.0

    def learn(self, d: int) -> None:
        """Department ``d`` folds the day's record into its beliefs (one day of forgetting first)."""
        f = self.forget
        for total, today in ((self.committed, self.today_committed), (self.caught, self.today_caught),
                             (self.sanctions, self.today_sanctions)):
            row = total[d]
            row *= f
            row += today[d]
            today[d] = 0.0
        self.late_num[d] = f * self.late_num[d] + self.today_late_num[d]
        self.late_den[d] = f * self.late_den[d] + self.today_late_den[d]
        self.today_late_num[d] = self.today_late_den[d] = 0.0

    def choose_order(self, d: int, model: GovernanceModel) -> None:
        """Department ``d`` chooses tomorrow's queue order. With cases waiting it serves the easiest first
        with chance σ((cherry_gain × L − E(cherry)) / choice_noise), L its load; each such day is a
        ``CHERRY`` violation in its record. With nobody waiting it keeps the order it was told."""
        self.choose_orders([d], model)

    def choose_orders(self, depts: list[int], model: GovernanceModel) -> None:
        """:meth:`choose_order` for each department of ``depts`` in turn (ascending), in one call: one uniform from
        ``rng_departments`` per department with cases waiting, drawn as a block (numpy's generator gives a block
        the values of as many single draws, so the choices do not depend on how the departments are grouped),
        the utility in Python floats (``math.exp``)."""
        if not depts:
            return
        s = model.settings.departments
        waiting = self.waiting[depts].tolist()
        on = [False] * len(depts)
        draw = [i for i, w in enumerate(waiting) if w > 0] if s.effort_choice else []
        if draw:
            k = _CHERRY
            dd = [depts[i] for i in draw]
            n = self.committed[dd, k, 0].tolist()
            sanctions = self.sanctions[dd, k, 0].tolist()
            staff = self.staff[dd].tolist()
            uniform = model.rng_departments.random(len(draw)).tolist()
            gain, noise = s.cherry_gain, s.choice_noise
            for j, i in enumerate(draw):
                expected = sanctions[j] / n[j] if n[j] > 0 else 0.0
                u = gain * waiting[i] / max(float(staff[j]), 1.0) - expected
                if uniform[j] < 1.0 / (1.0 + math.exp(-u / noise)):
                    on[i] = True
                    self.today_committed[dd[j], k, 0] += 1.0
        for d, was, now in zip(depts, self.easy_first[depts].tolist(), on, strict=True):
            if was != now:  # else set_easy_first does nothing
                self.queues.set_easy_first(d, now, model.cases.due, model.cases.boost)

    @staticmethod
    def cells(depts: np.ndarray, threat: np.ndarray) -> np.ndarray:
        """Flat indices of (department, kind 0, request class) in the (departments, kinds, 2) belief arrays,
        ``threat`` the class (bool or 0/1); add 2 × kind for another kind (:meth:`expected_at`)."""
        return depts.astype(np.intp) * (N_KINDS * 2) + threat

    def expected_at(self, cells: np.ndarray, kinds: Violation | np.ndarray) -> np.ndarray:
        """Sanction units a department expects per violation of ``kinds`` (0 with no record and no prior) for the
        flat ``cells`` (:meth:`cells`), by two flat gathers; for an array of kinds, one row per kind."""
        at = cells + 2 * np.asarray(kinds, dtype=np.intp)[..., None] if np.ndim(kinds) else cells + 2 * int(kinds)
        n = self.committed.reshape(-1).take(at)  # a view of the (contiguous) beliefs, or a copy: read only
        some = n > 0
        return np.where(some, self.sanctions.reshape(-1).take(at) / np.where(some, n, 1.0), 0.0)

    def expected_sanction(self, depts: np.ndarray, kind: Violation, threat: np.ndarray) -> np.ndarray:
        """Sanction units a department expects per violation of ``kind`` (0 with no record and no prior)."""
        at = self.cells(depts, threat.astype(np.int64)) + 2 * int(kind)
        n = self.committed.reshape(-1).take(at)
        return np.where(n > 0, self.sanctions.reshape(-1).take(at) / np.maximum(n, 1e-300), 0.0)

    def catch_rate(self, kind: Violation) -> np.ndarray:
        """Each department's believed chance of being caught for ``kind`` (plain requests; 0 without a record)."""
        n = self.committed[:, int(kind), 0]
        return np.where(n > 0, self.caught[:, int(kind), 0] / np.maximum(n, 1e-300), 0.0)

    def late_share(self, depts: np.ndarray) -> np.ndarray:
        """Each department's own share of properly handled cases that were late (0 without a record)."""
        den = self.late_den[depts]
        return np.where(den > 0, self.late_num[depts] / np.maximum(den, 1e-300), 0.0)


class ActionChoice:
    """The departments' choice of action and sign-for, over arrays of cases (rule in the module docstring). The
    utilities and the sign-for exponents come from the kernels case by case (:func:`sim.kernels.action_utilities`,
    :func:`sim.kernels.unsigned_exponent`: compiled always, as plain Python for a few cases), otherwise from
    whole-array calls; both give the same values."""

    def __init__(self, model: GovernanceModel) -> None:
        self.model = model
        self.s = model.settings.departments
        # the kernels compute the utilities case by case (sim.kernels.action_utilities; the same values as the
        # array code): compiled always, as plain Python up to a few cases (where the array calls cost more)
        self._kernel = model.kernels.action_utilities
        self._kernel_up_to = math.inf if model.kernels.COMPILED else _PLAIN_LOOP_UP_TO

    def utilities(self, cases: np.ndarray, pressure: float = 0.0) -> np.ndarray:
        """(n, 4) utilities of proper, perfunctory, sit and bounce for each case, in effort units.

        ``pressure``: the sanction an observer has just signalled for leaving these cases (a reminder, an
        inspection or an escalation), added to the cost of sitting on them.
        """
        m = self.model
        cs = m.cases
        t = m.departments
        s = self.s
        if len(cases) <= self._kernel_up_to:
            return self._kernel(cases, cs.dept, cs.tattle, cs.collective, cs.bounced, t.waiting, t._staff_1,
                                t.relay, t.committed, t.sanctions, t.late_num, t.late_den, _KIND_LATE, _KIND_PERF,
                                _KIND_BOUNCED, float(s.duty), float(s.load_weight), float(s.relay_effort),
                                float(s.perfunctory_effort), float(s.bounce_effort),
                                int(m.settings.platform.max_bounces), float(pressure))
        dept = cs.dept[cases]
        threat = cs.tattle[cases] | cs.collective[cases]
        c = 1.0 + s.load_weight * np.maximum(t.load(dept), 0.0)
        relay = t.relay[dept]
        # the expected sanctions of the three kinds used, at once (one row each)
        e_late, e_perf, e_bounced = t.expected_at(t.cells(dept, threat), _UTILITY_KINDS)
        u = np.empty((len(cases), 4))
        if relay.any():
            # passing an order on is a fraction of the effort of handling it (relay_effort)
            u[:, 0] = s.duty - c * np.where(relay, s.relay_effort, 1.0) - t.late_share(dept) * e_late
            # a relay cannot reply, so it cannot reply perfunctorily
            u[:, 1] = np.where(relay, -np.inf, -c * s.perfunctory_effort - e_perf)
        else:  # as above with no relay (c × 1.0 is c)
            u[:, 0] = s.duty - c - t.late_share(dept) * e_late
            u[:, 1] = -c * s.perfunctory_effort - e_perf
        u[:, 2] = -e_late - pressure
        u[:, 3] = np.where(cs.bounced[cases] < m.settings.platform.max_bounces,
                           -c * s.bounce_effort - e_bounced, -np.inf)
        return u

    def decide(self, cases: np.ndarray, rng: np.random.Generator, pressure: float = 0.0) -> np.ndarray:
        """The action (:class:`~sim.cases.Action` codes) for each case that reaches its department.

        Compelled cases (:meth:`sim.cases.CaseStore.compelled`) and reopened ones are handled properly.
        Otherwise a logit choice with scale ``choice_noise`` (Gumbel draws from ``rng``).
        """
        n = len(cases)
        if not self.s.effort_choice:
            return np.full(n, Action.PROPER, dtype=np.int8)
        cs = self.model.cases
        gumbel = gumbel_noise(rng, (n, 4))  # drawn before the utilities are read, as always
        u = self.utilities(cases, pressure)  # a new array: scaled and noised in place
        u /= self.s.choice_noise
        u += gumbel
        action = _ACTION_CODES[u.argmax(axis=1)]  # a new array
        action[cs.compelled(cases) | cs.reopened[cases]] = Action.PROPER
        return action

    def sign_now(self, cases: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Under a response mandate (the one each case was created under): which cases the department signs
        for at once, with chance
        1 − exp(−max(E(unsigned) − sign_effort, 0) / choice_noise): none when the sanction it expects for an
        unsigned case does not exceed the effort of signing."""
        m = self.model
        cs = m.cases
        if len(cases) == 0:
            return np.zeros(0, bool)
        mandate = m.levers.mandate
        if mandate.earlier is None:  # one mandate for every case (what covers says without the creation times)
            if not mandate.active:
                return np.zeros(len(cases), bool)
            covered = None  # every case
        else:
            covered = mandate.covers(cs.created[cases])  # a case keeps the mandate it was created under
            if not covered.any():
                return np.zeros(len(cases), bool)
        if len(cases) <= self._kernel_up_to:  # the exponent case by case (as for the utilities), the same values
            t = m.departments
            x = m.kernels.unsigned_exponent(cases, cs.dept, cs.tattle, cs.collective, t.committed, t.sanctions,
                                            _KIND_UNSIGNED, float(self.s.sign_effort), float(self.s.choice_noise))
        else:
            threat = cs.tattle[cases] | cs.collective[cases]
            e = m.departments.expected_sanction(cs.dept[cases], Violation.UNSIGNED, threat)
            x = -np.maximum(e - self.s.sign_effort, 0.0) / self.s.choice_noise
        sign = rng.random(len(cases)) < -np.expm1(x)
        return sign if covered is None else sign & covered

    def resolve_probability(self, cases: np.ndarray) -> np.ndarray:
        """Chance that proper handling solves the problem: difficulty, and supervision or escalation."""
        m = self.model
        cs = m.cases
        base = getattr(self, "_resolution_base", None)
        if base is None:  # the intercept less the difficulty's part, per category (the same operations)
            base = self._resolution_base = (self.s.resolution_intercept
                                            - self.s.resolution_difficulty_weight * m.demand.category_difficulty)
        x = base[cs.category[cases]] + self.s.supervised_resolution_bonus * (cs.supervised[cases] | cs.escalated[cases])
        return sigmoid(x)
