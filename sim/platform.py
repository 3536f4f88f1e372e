"""The platform (受理 acceptance and 跟踪 tracking): intake, direct answers, dispatch, reminders, call-backs,
and the aggregation of repeated complaints into systemic fixes (from online inquiry to online administration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import Channel, Status
from .departments import ServerPool
from .scenario import Hours

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


class Platform(mesa.Agent):
    """The city's 12345 centre / ZZIC: one pool of operators and the dispatch desk."""

    def __init__(self, model: GovernanceModel) -> None:
        super().__init__(model)
        p = model.settings.platform
        self.settings = p
        self.always_open = model.settings.policy.platform_hours == Hours.ALWAYS
        self.pool = ServerPool(p.operators, self.always_open, model.calendar)
        n_cat, n_twp = len(model.hierarchy.categories), model.hierarchy.n_townships
        w = model.settings.policy.systemic_fix_window_days
        self.complaints = np.zeros((w, n_cat, n_twp), dtype=np.int32)  # ring buffer of daily counts
        self.fix_until = np.full((n_cat, n_twp), -1.0)  # day until which a systemic fix is in force
        self.fixes_started = 0
        self.fix_log: list[tuple[int, int, int]] = []  # (day, category, township)

    # --------------------------------------------------------------------------------------- intake
    def receive(self, ids: np.ndarray) -> None:
        """Requests reach the platform: online at once; calls and visits only while someone answers."""
        m = self.model
        cs = m.cases
        created = cs.created[ids]
        ch = cs.channel[ids]
        arrive = created.copy()
        offline = (ch == Channel.OFFLINE) & self.settings.offline_office_hours
        if offline.any():  # a visit happens in office hours
            arrive[offline] = m.calendar.next_open_fast(created[offline])
        if not self.always_open:
            call = ch == Channel.HOTLINE  # nobody answers at night: the caller tries again when open
            if call.any():
                arrive[call] = m.calendar.next_open_fast(created[call])
        if self.settings.instant_intake:
            m.agenda.schedule("accept", arrive, ids)
            return
        self.pool.arrive(ids, arrive)
        m.intake_active = True

    def work(self, t_end: float, starts: list) -> None:
        """Operators take in requests until ``t_end``; acceptance completes after the handling time."""
        self.pool.advance(t_end, self.model.intake_time, self.model.cases.due, self.model.boost, starts)

    def accept(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Accepted requests: consultations answered directly, the rest dispatched."""
        m = self.model
        cs = m.cases
        rng = m.rng_intake
        waiting = cs.status[ids] == Status.AWAITING_INTAKE  # the requester may have given up meanwhile
        ids, times = ids[waiting], times[waiting]
        cs.accepted[ids] = times
        direct = cs.consultation[ids] & (rng.random(len(ids)) < self.settings.direct_answer_share)
        d_ids, d_t = ids[direct], times[direct]
        if len(d_ids):
            cs.direct_answer[d_ids] = True
            cs.first_response[d_ids] = d_t
            cs.replied[d_ids] = d_t
            cs.resolved[d_ids] = True
            m.after_reply(d_ids, d_t)
        o_ids, o_t = ids[~direct], times[~direct]
        if len(o_ids):
            self.dispatch(o_ids, o_t)

    def dispatch(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Send orders down the hierarchy (cascade) or straight to the handling unit (direct)."""
        m = self.model
        cs = m.cases
        rng = m.rng_intake
        p = self.settings
        t = times + p.dispatch_delay_h
        cs.dispatched[ids] = t
        cs.status[ids] = Status.IN_TRANSIT
        hops = cs.hops[ids]
        if p.handover_delay_h > 0:
            for k in range(1, int(hops.max(initial=1))):
                more = hops > k
                if more.any():
                    delay = p.handover_delay_h * rng.lognormal(0.0, 0.8, int(more.sum()))
                    t[more] = t[more] + delay
                    if not m.dept_always_open:
                        t[more] = m.calendar.next_open_fast(t[more])
        wrong = rng.random(len(ids)) > p.classification_accuracy
        if wrong.any():
            cs.misrouted[ids[wrong]] = True
            back = t[wrong] + p.misroute_return_h
            if not m.dept_always_open:
                back = m.calendar.next_open_fast(back)
            t[wrong] = back + p.dispatch_delay_h
        m.agenda.schedule("arrive", t, ids)

    # ------------------------------------------------------------------------------------- tracking
    def schedule_reminders(self, ids: np.ndarray) -> None:
        if not self.model.settings.policy.tracking:
            return
        cs = self.model.cases
        when = np.maximum(cs.due[ids] - self.model.settings.policy.reminder_lead_h, cs.created[ids] + 1.0)
        self.model.agenda.schedule("remind", when, ids)

    # -------------------------------------------------------------------------------- systemic fixes
    def aggregate(self, day: int, ids_today: np.ndarray) -> None:
        """Count today's complaints by (category, township); past the threshold, a systemic fix starts."""
        m = self.model
        pol = m.settings.policy
        slot = day % self.complaints.shape[0]
        self.complaints[slot] = 0
        if len(ids_today):
            cs = m.cases
            keep = ~cs.consultation[ids_today]
            np.add.at(self.complaints[slot], (cs.category[ids_today][keep], cs.region[ids_today][keep]), 1)
        if not pol.systemic_fix:
            return
        window = self.complaints.sum(axis=0)
        trigger = (window >= pol.systemic_fix_threshold) & (self.fix_until < day)
        if trigger.any():
            cats, twps = np.nonzero(trigger)
            self.fix_until[cats, twps] = day + pol.systemic_fix_duration_days
            self.complaints[:, cats, twps] = 0
            self.fixes_started += len(cats)
            self.fix_log.extend((day, int(c), int(j)) for c, j in zip(cats, twps, strict=True))

    def rate_multiplier(self, day: float) -> np.ndarray:
        """Factor on each (category, township) problem rate from fixes in force."""
        effect = self.model.settings.policy.systemic_fix_effect
        return np.where(self.fix_until >= day, 1.0 - effect, 1.0)

    def fixes_active(self, day: float) -> int:
        return int((self.fix_until >= day).sum())
