"""The platform (受理 acceptance): the operators who take in requests, and the aggregation of repeated
complaints into systemic fixes (from online inquiry to online administration).

What happens to an accepted request (a direct answer or dispatch down the hierarchy) is a lifecycle
transition: :func:`sim.lifecycle.accept` and :func:`sim.lifecycle.dispatch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import Channel
from .lifecycle import Event
from .queues import QueueBank

if TYPE_CHECKING:  # pragma: no cover
    from .levers import Levers
    from .model import GovernanceModel


class Platform(mesa.Agent):
    """The city's 12345 centre / ZZIC: one pool of operators and the dispatch desk."""

    def __init__(self, model: GovernanceModel) -> None:
        super().__init__(model)
        p = model.settings.platform
        self.settings = p
        self.always_open = model.levers.platform_always_open
        self.queue = QueueBank(np.array([p.operators]), self.always_open, model.calendar,
                               cases=model.cases.capacity, kernels=model.kernels)  # one FIFO queue, operators serve it
        self.arrivals: list[tuple[np.ndarray, np.ndarray]] = []  # requests reaching intake this step, not yet queued
        self.fix = model.levers.systemic_fix
        self.active = False  # requests are waiting for (or in the hands of) operators
        n_cat, n_twp = len(model.hierarchy.categories), model.hierarchy.n_townships
        w = self.fix.window_days
        self.complaints = np.zeros((w, n_cat, n_twp), dtype=np.int32)  # ring buffer of daily counts
        self.fix_until = np.full((n_cat, n_twp), -1.0)  # day until which a systemic fix is in force
        self.callback_minutes_today = 0.0  # operator minutes spent on call-backs today
        self.callbacks_today = 0  # call-backs made today
        self.fixes_started = 0
        self.fix_log: list[tuple[int, int, int]] = []  # (day, category, township)

    def rebind(self, levers: Levers, day: int) -> None:
        """A policy change at the start of ``day``: the platform's hours and the systemic-fix lever become the
        new ones. Requests already in the intake queue wait for the new hours; the complaint counts of the last
        ``window_days`` days are kept (as many as both windows hold); fixes in force keep their end day."""
        if levers.platform_always_open != self.always_open:
            self.always_open = levers.platform_always_open
            self.queue.always_open = self.always_open
            self.queue.blocked[:] = 0.0  # the next possible start was computed for the old hours
        if levers.systemic_fix != self.fix:
            old, new = self.fix.window_days, levers.systemic_fix.window_days
            if new != old:
                ring = np.zeros((new, *self.complaints.shape[1:]), dtype=self.complaints.dtype)
                for d in range(max(day - min(old, new), 0), day):
                    ring[d % new] = self.complaints[d % old]
                self.complaints = ring
            self.fix = levers.systemic_fix

    # --------------------------------------------------------------------------------------- intake
    def receive(self, ids: np.ndarray) -> None:
        """Requests reach the platform: online at once; calls and visits only while someone answers."""
        m = self.model
        cs = m.cases
        created = cs.created[ids]
        ch = cs.channel[ids]
        arrive = created.copy()
        if self.settings.offline_office_hours:
            offline = ch == Channel.OFFLINE
            if offline.any():  # a visit happens in office hours
                arrive[offline] = m.calendar.next_open_fast(created[offline])
        if not self.always_open:
            call = ch == Channel.HOTLINE  # nobody answers at night: the caller tries again when open
            if call.any():
                arrive[call] = m.calendar.next_open_fast(created[call])
        if self.settings.instant_intake:
            m.agenda.schedule(Event.ACCEPT, arrive, ids)
            return
        self.arrivals.append((ids, arrive))
        self.active = True

    def work(self, t_end: float) -> None:
        """Operators take in requests until ``t_end`` (h); each acceptance completes after its handling
        time (an ``ACCEPT`` event)."""
        if not self.active:
            return
        cs = self.model.cases
        if self.arrivals:
            if len(self.arrivals) == 1:
                ids, times = self.arrivals[0]
            else:
                ids = np.concatenate([a[0] for a in self.arrivals])
                times = np.concatenate([a[1] for a in self.arrivals])
            self.arrivals = []
        else:
            q = self.queue
            if not (q.active & ((q.blocked < t_end) | (q.nlive <= 0))).any():  # the run would look at nothing
                self.active = bool(q.nlive[0])
                return
            ids, times = np.zeros(0, dtype=np.int64), np.zeros(0)
        started, _, done = self.queue.run(t_end, np.zeros(len(ids), dtype=np.int64), ids, times,
                                          cs.intake_time[ids], cs.due[ids], cs.boost[ids])
        if len(started):
            self.model.agenda.schedule(Event.ACCEPT, done, started)
        self.active = bool(self.queue.nlive[0])

    # -------------------------------------------------------------------------------- systemic fixes
    def aggregate(self, day: int, ids_today: np.ndarray) -> None:
        """Count today's complaints by (category, township); past the threshold, a systemic fix starts."""
        m = self.model
        slot = day % self.complaints.shape[0]
        self.complaints[slot] = 0
        if len(ids_today):
            cs = m.cases
            keep = ~cs.consultation[ids_today]
            np.add.at(self.complaints[slot], (cs.category[ids_today][keep], cs.region[ids_today][keep]), 1)
        trigger = self.fix.triggered(self.complaints.sum(axis=0), self.fix_until, day)
        if trigger is not None and trigger.any():
            cats, twps = np.nonzero(trigger)
            self.fix_until[cats, twps] = day + self.fix.duration_days
            self.complaints[:, cats, twps] = 0
            self.fixes_started += len(cats)
            self.fix_log.extend((day, int(c), int(j)) for c, j in zip(cats, twps, strict=True))

    def rate_multiplier(self, day: float) -> np.ndarray:
        """Factor on each (category, township) problem rate from fixes in force."""
        return self.fix.rate_factor(self.fix_until, day)

    def fixes_active(self, day: float) -> int:
        return int((self.fix_until >= day).sum())
