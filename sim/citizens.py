"""Citizens and enterprises: who meets problems, who reports them, how, and what they make of the outcome.

Citizens are a vectorised population with agent-level rules: not Mesa agents, but one row each of
columnar state (one array per attribute over the whole population), so that millions of requesters
cost little. Each rule is written for one requester and applied at once to whoever acts in a step:

* ``report``: Epstein-style threshold rule (Epstein 2002; docs/sources.md, S21): report when
  ``severity × efficacy + report_trust_weight × (trust − 0.5) − channel_cost − threshold + ε > 0``,
  ε logistic with scale ``report_noise``.
* ``choose_channel``: multinomial logit over open channels: cost, digital access (online needs it),
  and stickiness to the channel that last satisfied.
* ``judge``: satisfaction score ``w_r·solved + w_a·answered + w_t·timeliness − w_p·perfunctory + ε``
  against ``satisfaction_threshold``; timeliness = exp(−elapsed / (2·expected_response_h)).
* ``learn``: trust and efficacy move toward the outcome with learning rates; the day's changes spread
  once a day to contacts on a sparse social network (a share ``social_influence`` of each change).
* memory: between experiences, trust and efficacy relax toward the requester's disposition (the value
  drawn at set-up) by a factor e every ``trust_memory_days``. The relaxation is lazy: each row keeps its
  value and the hour it was set, and is brought up to date only when it is read or written; population
  means come from running sums (see :meth:`Population.mean_trust`), so no step visits every requester.
* ``escalate``: grievance = severity × (1 − trust) (Epstein's hardship × (1 − legitimacy)); escalate
  when grievance − ``escalation_cost`` + ε exceeds ``escalation_threshold`` (lower by
  ``threat_escalation_shift`` for a requester who threatened to tell the upper level or to act collectively:
  the threat is carried out more readily). ``dismissed``: the upper level dismisses an escalation with
  chance ``escalation_risk``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .cases import Channel
from .kernels import _clip01  # the plain copy: a Python function on floats

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


def _weighted_sum(d: np.ndarray, w: np.ndarray) -> float:
    """Σ d·w, as numpy sums the products (pairwise), for the running sums of trust and efficacy. Not ``np.dot``:
    BLAS splits a long dot product (over 10,000 terms) across threads, so its last bits depended on the number
    of threads, and its idle threads kept a second core busy."""
    return float(np.add.reduce(d * w))


def gumbel_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Standard Gumbel draws −log(−log(u)) of ``shape`` for a logit choice, made in place on one array of
    uniforms from ``rng``."""
    g = rng.random(shape)
    np.log(g, out=g)
    np.negative(g, out=g)
    np.log(g, out=g)
    np.negative(g, out=g)
    return g


class Population:
    """Columnar state of all requesters, sorted by (township, kind)."""

    def __init__(self, model: GovernanceModel, rng: np.random.Generator) -> None:
        sc = model.settings
        w, c = sc.world, sc.citizens
        h = model.hierarchy
        self.model = model
        n = w.population
        self.n = n
        # people per township: urban townships share urban_population_share of everyone
        urban = h.township_urban
        n_u, n_r = int(urban.sum()), int((~urban).sum())
        weights = np.where(urban, w.urban_population_share / max(n_u, 1), (1 - w.urban_population_share) / max(n_r, 1))
        if n_u == 0 or n_r == 0:
            weights = np.ones(h.n_townships)
        weights = weights / weights.sum()
        counts = rng.multinomial(n, weights)
        ent = rng.multinomial(n, [1 - w.enterprise_share, w.enterprise_share])[1]
        ent_counts = rng.multivariate_hypergeometric(counts, ent) if ent else np.zeros_like(counts)
        self.region = np.repeat(np.arange(h.n_townships, dtype=np.int32), counts)
        # within each township: citizens first, then enterprises
        self.enterprise = np.zeros(n, dtype=bool)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.offset = np.stack([starts, starts + counts - ent_counts], axis=1)  # [township, kind] start
        self.count = np.stack([counts - ent_counts, ent_counts], axis=1)        # [township, kind] size
        # pick_requesters' look-ups, flat by 2 × township + kind: the kind picked (the other one when the
        # township has none of the kind asked for), its start and its size
        picked = np.where(self.count == 0, 1 - np.arange(2), np.arange(2))
        cells = np.arange(len(counts))[:, None]
        self._pick_start = self.offset[cells, picked].ravel()
        self._pick_count = self.count[cells, picked].ravel()
        for j in np.flatnonzero(ent_counts):
            self.enterprise[self.offset[j, 1]: self.offset[j, 1] + ent_counts[j]] = True
        self.urban = urban[self.region]
        access = np.where(self.urban, w.digital_access_urban, w.digital_access_rural)
        access = np.where(self.enterprise, np.maximum(access, 0.95), access)
        self.digital = rng.random(n) < access
        sd = c.heterogeneity
        # stored values (as of t_set) and dispositions (the values drawn at set-up, what memory relaxes to)
        self.trust = np.clip(rng.normal(c.initial_trust, sd, n), 0.0, 1.0)
        self.efficacy = np.clip(rng.normal(c.initial_efficacy, sd, n), 0.0, 1.0)
        self.trust0 = self.trust.copy()
        self.efficacy0 = self.efficacy.copy()
        self.t_set = np.zeros(n)  # hour (since the start) at which each row's trust and efficacy were set
        self.tau_h = c.trust_memory_days * 24.0  # relaxation time, hours (inf: no relaxation)
        # running sums for the means: S = Σ_i (x_i − x0_i)·exp((t_set_i − t_ref)/τ), so that
        # mean x(t) = mean x0 + exp(−(t − t_ref)/τ)·S/n for t ≥ every t_set (see mean_trust)
        self._t_ref = 0.0
        self._s_trust = 0.0
        self._s_efficacy = 0.0
        self._trust0_mean = float(self.trust0.mean()) if n else 0.0
        self._efficacy0_mean = float(self.efficacy0.mean()) if n else 0.0
        self.last_good_channel = np.full(n, -1, dtype=np.int8)
        self.trust_change = np.zeros(n)  # today's change, spread to contacts at the end of the day
        self.changed: list[np.ndarray] = []
        self._mark = np.zeros(n, dtype=bool)  # scratch flags for _distinct, all False between calls
        self._channels: tuple | None = None  # (settings, _channel_table's tables) for those settings
        self._report_costs: tuple | None = None  # (settings, cost of each channel) for report
        self._build_network(w.social_degree, w.local_tie_share, rng)

    # ----------------------------------------------------------------------------------------------
    def _build_network(self, k: int, local_share: float, rng: np.random.Generator) -> None:
        """Each requester listens to k contacts: mostly neighbours in the same township, some anywhere.

        Stored as a dense (n, k) index array, the CSR form of a k-out-regular directed graph.
        """
        n = self.n
        if k == 0 or n < 2:
            self.contacts = np.zeros((n, 0), dtype=np.int32)
            return
        # the same draws and operations as local = random < share, local_pick = start + ⌊random × size⌋,
        # any_pick = integers(0, n), contacts = where(local, local_pick, any_pick), with fewer and smaller
        # temporary (n, k) arrays (a large array's first use costs its pages, which at a million citizens is most
        # of it): the picks are stored as int32 (rows below n < 2**31: the same values) as soon as they are made
        draws = rng.random((n, k))
        local = draws < local_share
        rng.random(out=draws)
        draws *= (self.count[self.region, 0] + self.count[self.region, 1])[:, None]
        local_pick = draws.astype(np.int32)  # truncation, as to int64: the values are below n
        del draws
        local_pick += self.offset[self.region, 0].astype(np.int32)[:, None]
        contacts = rng.integers(0, n, size=(n, k)).astype(np.int32)
        np.copyto(contacts, local_pick, where=local)
        del local_pick
        self.contacts = contacts

    # ------------------------------------------------------------------------------------ memory
    REBASE_EXPONENT = 300.0  # rebase the running sums' reference time when (now − t_ref)/τ exceeds this

    def _now(self, now: float | None) -> float:
        """``now`` in hours since the start, or the model's clock (``model.hour``) when not given."""
        return float(getattr(self.model, "hour", 0)) if now is None else float(now)

    def _decay(self, who: np.ndarray, now: float | np.ndarray) -> np.ndarray:
        """exp(−(now − t_set)/τ) for the rows ``who`` (1 at or before t_set; 1 when τ is infinite)."""
        dt = np.maximum(np.asarray(now, dtype=float) - self.t_set[who], 0.0)
        return np.exp(-dt / self.tau_h)

    @staticmethod
    def _relaxed(stored: np.ndarray, base: np.ndarray, who: np.ndarray, decay: np.ndarray) -> np.ndarray:
        """The rows ``who`` of a stored value relaxed toward their ``base`` (disposition) by ``decay``."""
        b = base[who]
        return b + (stored[who] - b) * decay

    def trust_at(self, who: np.ndarray, now: float | np.ndarray | None = None) -> np.ndarray:
        """Trust (0–1) of the requesters ``who`` at hour ``now`` (hours since the start; default: the
        model's clock), relaxed toward their disposition since they were last set. Reads only; vectorised."""
        if now is None:
            now = self._now(None)
        return self._relaxed(self.trust, self.trust0, who, self._decay(who, now))

    def efficacy_at(self, who: np.ndarray, now: float | np.ndarray | None = None) -> np.ndarray:
        """Efficacy (0–1) of the requesters ``who`` at hour ``now`` (as :meth:`trust_at`)."""
        if now is None:
            now = self._now(None)
        return self._relaxed(self.efficacy, self.efficacy0, who, self._decay(who, now))

    def _rebase(self) -> None:
        """Move the running sums' reference time to the latest t_set and recompute them over all rows."""
        self._t_ref = float(self.t_set.max())
        w = np.exp((self.t_set - self._t_ref) / self.tau_h)
        self._s_trust = _weighted_sum(self.trust - self.trust0, w)
        self._s_efficacy = _weighted_sum(self.efficacy - self.efficacy0, w)

    def _bring_up(self, rows: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Relax the stored trust and efficacy of ``rows`` (unique indices) to hour ``now`` and set their
        t_set to it (never back: a row set later than ``now`` stays as it is). A row's term in the running
        sums does not change (the relaxation is what the sums already discount), so they are left alone.
        Returns the rows' new t_set (hours), trust and efficacy, as stored."""
        t_set = self.t_set[rows]
        t = np.maximum(t_set, now)
        f = np.exp(-(t - t_set) / self.tau_h)
        trust0, efficacy0 = self.trust0[rows], self.efficacy0[rows]
        trust = trust0 + (self.trust[rows] - trust0) * f
        efficacy = efficacy0 + (self.efficacy[rows] - efficacy0) * f
        self.trust[rows] = trust
        self.efficacy[rows] = efficacy
        self.t_set[rows] = t
        return t, trust, efficacy

    def _account(self, t_set: np.ndarray, d_trust: np.ndarray | None, d_efficacy: np.ndarray | None) -> None:
        """Add the changes of the stored values of some rows (unique, already brought up to date and changed;
        ``t_set`` their t_set, hours), one per row, to the running sums, each weighted by its row's
        exp((t_set − t_ref)/τ). When an exponent would pass ``REBASE_EXPONENT`` the sums are instead recomputed
        over all rows with a new reference time (one O(n) pass, about once every 300·τ hours of simulated time),
        which takes the changes in."""
        x = (t_set - self._t_ref) / self.tau_h
        if len(x) and x.max() > self.REBASE_EXPONENT:
            self._rebase()
            return
        w = np.exp(x)
        if d_trust is not None:
            self._s_trust += _weighted_sum(d_trust, w)
        if d_efficacy is not None:
            self._s_efficacy += _weighted_sum(d_efficacy, w)

    #: :meth:`_distinct` sorts an ``idx`` of up to n / DISTINCT_SORT_SHARE indices and marks flags for a longer one.
    #: numpy's (SIMD) sort takes about 3 ns an index (int32; 5 ns int64), the flags' scan (``flatnonzero`` over
    #: n flags) about 1 ns a row of the population, more when the flags are mixed: measured at n = 10⁶, the sort
    #: is the faster up to about n/6 (int32) or n/7 (int64) indices, and 6–10 times faster at n/16 and below.
    DISTINCT_SORT_SHARE = 8

    def _distinct(self, idx: np.ndarray) -> np.ndarray:
        """The distinct row indices in ``idx``, sorted (the values of ``np.unique``): for a very short ``idx`` by
        Python's set and sort, for a short one (up to n/:attr:`DISTINCT_SORT_SHARE`) by a numpy sort, for a long one
        by marking each row in a scratch array of n flags, cheaper than a sort. Always of the dtype of ``idx``
        (the compiled kernels that take the rows are compiled for that dtype)."""
        if len(idx) <= 16:
            return np.array(sorted(set(idx.tolist())), dtype=idx.dtype)
        if len(idx) <= self.n // self.DISTINCT_SORT_SHARE:
            s = np.sort(idx)
            keep = np.empty(len(s), dtype=bool)
            keep[0] = True
            np.not_equal(s[1:], s[:-1], out=keep[1:])
            return s[keep]
        mark = self._mark  # all False between calls
        mark[idx] = True
        rows = np.flatnonzero(mark)
        mark[rows] = False
        return rows.astype(idx.dtype, copy=False)

    def mean_trust(self, now: float | None = None) -> float:
        """Mean trust (0–1) of everyone at hour ``now`` (default: the model's clock), from the running sum:
        O(1). Exact for ``now`` at or after every row's last update."""
        if self.n == 0:
            return float("nan")
        now = self._now(now)
        return self._trust0_mean + float(np.exp(-(now - self._t_ref) / self.tau_h)) * self._s_trust / self.n

    def mean_efficacy(self, now: float | None = None) -> float:
        """Mean efficacy (0–1) of everyone at hour ``now`` (as :meth:`mean_trust`)."""
        if self.n == 0:
            return float("nan")
        now = self._now(now)
        return (self._efficacy0_mean
                + float(np.exp(-(now - self._t_ref) / self.tau_h)) * self._s_efficacy / self.n)

    # ----------------------------------------------------------------------------------------------
    def pick_requesters(self, township: np.ndarray, enterprise: np.ndarray, rng: np.random.Generator
                        ) -> np.ndarray:
        """A random requester of the given kind in each township (falls back to the other kind if none)."""
        cell = 2 * township.astype(np.int64) + enterprise
        return self._pick_start[cell] + (rng.random(len(township)) * self._pick_count[cell]).astype(np.int64)

    def _channel_table(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """The utilities of the three channels for each kind of requester, made once for the settings:
        row ``4 × digital + last_good_channel + 1`` (utility units, −inf where closed); whether each row has an
        open channel; and whether all do."""
        c = self.model.settings.citizens
        open_ = self.model.settings.platform.channels
        cached = self._channels
        if cached is not None and cached[0][0] is c and cached[0][1] is open_:
            return cached[1]
        table = np.empty((8, 3))
        for digital in (0, 1):
            for last in (-1, 0, 1, 2):
                row = table[4 * digital + last + 1]
                row[Channel.ONLINE] = -c.channel_cost_online if (digital and open_.online) else -np.inf
                row[Channel.HOTLINE] = -c.channel_cost_hotline if open_.hotline else -np.inf
                row[Channel.OFFLINE] = -c.channel_cost_offline if open_.offline else -np.inf
                if last >= 0:
                    row[last] += c.channel_stickiness
        reachable = np.isfinite(table).any(axis=1)
        out = (table, reachable, bool(reachable.all()))
        self._channels = ((c, open_), out)
        return out

    def choose_channel(self, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.model.settings.citizens
        n = len(who)
        if c.channel_mix is not None:
            mix = np.array([c.channel_mix.get(k, 0.0) for k in ("online", "hotline", "offline")])
            return rng.choice(3, size=n, p=mix / mix.sum()).astype(np.int8)
        # utilities: −cost of each open channel (online needs digital access), plus stickiness to the channel
        # that last satisfied; one table row per (digital access, last good channel)
        table, reachable, all_reachable = self._channel_table()
        kern = self.model.kernels
        if all_reachable and kern.COMPILED:  # the same operations, element by element in a kernel
            return kern.channel_choice(who, self.digital, self.last_good_channel, table, c.channel_choice_scale,
                                       gumbel_noise(rng, (n, 3)))
        row = 4 * self.digital[who] + self.last_good_channel[who] + 1
        util = table[row]  # a new array: scaled and noised in place
        util /= c.channel_choice_scale
        util += gumbel_noise(rng, (n, 3))
        choice = util.argmax(axis=1).astype(np.int8)
        if all_reachable:
            return choice
        # no open channel for this requester (e.g. online only, without internet access): -1, cannot report
        return np.where(reachable[row], choice, -1).astype(np.int8)

    def report(self, who: np.ndarray, severity: np.ndarray, channel: np.ndarray,
               rng: np.random.Generator, now: float | None = None) -> np.ndarray:
        """Who of them reports (True) — the threshold rule with logistic noise:
        ``severity × efficacy + report_trust_weight × (trust − 0.5) − cost − report_threshold + ε > 0``
        (utility units), trust and efficacy as of ``now`` (hours; default: the model's clock)."""
        c = self.model.settings.citizens
        now = self._now(now)
        costs = self._report_costs
        if costs is None or costs[0] is not c:
            costs = self._report_costs = (c, np.array([c.channel_cost_online, c.channel_cost_hotline,
                                                       c.channel_cost_offline]))
        compiled = self.model.kernels.COMPILED
        if len(who) <= self.FEW and not compiled:
            # a few requesters: Python floats where the arrays below make one numpy call per operation on a few
            # elements; the same operations in the same order (IEEE arithmetic; np.exp on arrays as there)
            tau = self.tau_h
            decay = np.exp(np.array([-(d if (d >= 0.0 or d != d) else 0.0) / tau  # np.maximum(now − t_set, 0)
                                     for d in [now - a for a in self.t_set[who].tolist()]])).tolist()
            cost = costs[1].tolist()
            thr = c.report_threshold
            u = [s * (b + (v - b) * f) - cost[ch] - thr for s, b, v, f, ch in zip(
                severity.tolist(), self.efficacy0[who].tolist(), self.efficacy[who].tolist(), decay,
                channel.tolist(), strict=True)]
            w = c.report_trust_weight
            if w:
                u = [x + w * ((b + (v - b) * f) - 0.5) for x, b, v, f in zip(
                    u, self.trust0[who].tolist(), self.trust[who].tolist(), decay, strict=True)]
            noise = c.report_noise
            z = np.array([-x / noise for x in u])
        elif compiled:  # the same operations, element by element in kernels around np.exp
            kern = self.model.kernels
            decay = kern.decay_args(who, self.t_set, now, self.tau_h)
            np.exp(decay, out=decay)
            z = kern.report_exponents(who, severity, channel, costs[1], decay, c.report_threshold,
                                      c.report_trust_weight, c.report_noise, self.efficacy, self.efficacy0,
                                      self.trust, self.trust0)
        else:
            cost = costs[1][channel]
            decay = self._decay(who, now)  # as in efficacy_at and trust_at, computed once for both
            u = severity * self._relaxed(self.efficacy, self.efficacy0, who, decay) - cost - c.report_threshold
            if c.report_trust_weight:
                u = u + c.report_trust_weight * (self._relaxed(self.trust, self.trust0, who, decay) - 0.5)
            z = -u / c.report_noise
        if len(z) and z.max() > 700.0:
            with np.errstate(over="ignore"):  # a far-off threshold: exp overflows to inf, the chance to 0
                return rng.random(len(who)) < 1.0 / (1.0 + np.exp(z))
        return rng.random(len(who)) < 1.0 / (1.0 + np.exp(z))

    def judge(self, cases: np.ndarray, now: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Satisfied (True) or not, for replied cases."""
        m = self.model
        c = m.settings.citizens
        cs = m.cases
        kern = m.kernels
        if kern.COMPILED:  # the same operations, element by element in kernels around np.exp
            timely = kern.judge_args(cases, now, cs.created, 2.0 * c.expected_response_h)
            np.exp(timely, out=timely)
            noise = rng.logistic(0.0, c.satisfaction_noise, len(cases))
            return kern.judge_scores(cases, timely, noise, cs.true_resolved, cs.perfunctory,
                                     c.satisfaction_resolved_weight, c.satisfaction_reply_weight,
                                     c.satisfaction_timeliness_weight, c.satisfaction_perfunctory_penalty,
                                     c.satisfaction_threshold)
        if len(cases) <= 8:
            # a few cases (up to 8: more cost as much as the arrays): Python floats where the arrays below make one numpy call per operation on a few
            # elements; the same operations in the same order (IEEE arithmetic; np.exp on an array as there)
            scale = 2.0 * c.expected_response_h
            timely = np.exp(np.array([-(d if (d >= 0.0 or d != d) else 0.0) / scale  # np.maximum(elapsed, 0)
                                      for d in [a - b for a, b in zip(now.tolist(), cs.created[cases].tolist(),
                                                                      strict=True)]])).tolist()
            wr, wa = c.satisfaction_resolved_weight, c.satisfaction_reply_weight
            wt, wp = c.satisfaction_timeliness_weight, c.satisfaction_perfunctory_penalty
            noise = rng.logistic(0.0, c.satisfaction_noise, len(cases)).tolist()
            thr = c.satisfaction_threshold
            return np.array([wr * float(s) + wa * float(not p and not s) + wt * g - wp * float(p) + e > thr
                             for s, p, g, e in zip(cs.true_resolved[cases].tolist(), cs.perfunctory[cases].tolist(),
                                                   timely, noise, strict=True)], dtype=bool)
        elapsed = np.maximum(now - cs.created[cases], 0.0)
        timely = np.exp(-elapsed / (2.0 * c.expected_response_h))
        perf = cs.perfunctory[cases]
        solved = cs.true_resolved[cases]  # the requester knows whether the problem was solved
        score = (c.satisfaction_resolved_weight * solved
                 + c.satisfaction_reply_weight * (~perf & ~solved)
                 + c.satisfaction_timeliness_weight * timely
                 - c.satisfaction_perfunctory_penalty * perf
                 + rng.logistic(0.0, c.satisfaction_noise, len(cases)))
        return score > c.satisfaction_threshold

    def escalate(self, cases: np.ndarray, rng: np.random.Generator, now: float | None = None) -> np.ndarray:
        """Whose requester escalates (True) to the upper level: grievance = severity × (1 − trust), minus
        the effort of petitioning (``escalation_cost``), plus logistic noise, above ``escalation_threshold``
        (grievance units; lower by ``threat_escalation_shift`` after a threat). Trust as of ``now`` (hours;
        default: the model's clock)."""
        m = self.model
        c = m.settings.citizens
        cs = m.cases
        who = cs.citizen[cases]
        kern = m.kernels
        if kern.COMPILED:  # the same operations, element by element in kernels around np.exp
            decay = kern.decay_args(who, self.t_set, self._now(now), self.tau_h)
            np.exp(decay, out=decay)
            noise = rng.logistic(0.0, c.escalation_noise, len(cases))
            return kern.escalate_decide(cases, who, decay, noise, m.demand.category_severity, cs.category, cs.tattle,
                                        cs.collective, self.trust, self.trust0, c.escalation_threshold,
                                        c.threat_escalation_shift, c.escalation_cost)
        grievance = m.demand.category_severity[cs.category[cases]] * (1.0 - self.trust_at(who, self._now(now)))
        threshold = c.escalation_threshold - c.threat_escalation_shift * (cs.tattle[cases] | cs.collective[cases])
        return grievance - c.escalation_cost + rng.logistic(0.0, c.escalation_noise, len(cases)) > threshold

    def dismissed(self, cases: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Which escalations of ``cases`` the upper level dismisses (True), each with chance
        ``citizens.escalation_risk``: it then does nothing, and the requester learns a failure. One uniform
        draw per case from ``rng`` (none when the risk is 0 or there are no cases)."""
        risk = self.model.settings.citizens.escalation_risk
        k = len(cases)
        if k == 0 or risk <= 0.0:
            return np.zeros(k, dtype=bool)
        return rng.random(k) < risk

    def learn(self, who: np.ndarray, satisfied: np.ndarray, resolved: np.ndarray,
              channel: np.ndarray, now: float | None = None) -> None:
        """Move trust and efficacy toward the outcome (after relaxing them to ``now``, hours; default: the
        model's clock); remember a channel that worked. Up to :attr:`FEW` outcomes of distinct people are
        worked out in Python floats (:meth:`_learn_one`, :meth:`_learn_few`: the same operations, the same
        results), more with one numpy call per step (:meth:`_learn_distinct` when the people are distinct, which
        with the compiled kernels also takes from two to :attr:`FEW` outcomes). ``who``: row indices of any integer
        dtype, taken as the population's own (int32, as the case store keeps them; the kernels compiled ahead of
        time are compiled for those)."""
        c = self.model.settings.citizens
        if len(who) == 0:
            return
        who = np.asarray(who, dtype=np.int32)  # the same array when it is int32 already
        now = self._now(now)
        if len(who) == 1:
            self._learn_one(int(who[0]), float(satisfied[0]), float(resolved[0]), channel, now)
            self.changed.append(who)
            return
        if len(who) <= self.FEW:
            wl = who.tolist()
            if len(set(wl)) == len(wl):  # one outcome per person
                if self.model.kernels.COMPILED:  # its kernels cost less than the Python floats
                    perm = np.array(sorted(range(len(wl)), key=wl.__getitem__))  # as np.argsort(who): distinct
                    self._learn_distinct(who, perm, satisfied, resolved, channel, now)
                else:
                    self._learn_few(who, wl, satisfied, resolved, channel, now)
                self.changed.append(who)
                return
        if len(who) <= self.n // self.DISTINCT_SORT_SHARE:  # (else _distinct marks flags rather than sorting)
            perm = np.argsort(who)
            s = who[perm]  # the values of np.sort(who)
            if (s[1:] != s[:-1]).all():  # one outcome per person
                self._learn_distinct(who, perm, satisfied, resolved, channel, now)
                self.changed.append(who)
                return
        rows = self._distinct(who)
        t_set, t_old, e_old = self._bring_up(rows, now)
        sat = satisfied.astype(float)
        # several outcomes for one person in a step: apply them in order (np.add.at keeps them all)
        dt = c.trust_learning_rate * (sat - self.trust[who])
        np.add.at(self.trust, who, dt)
        t_new = np.minimum(1.0, np.maximum(0.0, self.trust[rows]))  # as np.clip; only these rows: cost ∝ outcomes
        self.trust[rows] = t_new
        np.add.at(self.trust_change, who, dt)
        de = c.efficacy_learning_rate * (resolved.astype(float) - self.efficacy[who])
        np.add.at(self.efficacy, who, de)
        e_new = np.minimum(1.0, np.maximum(0.0, self.efficacy[rows]))
        self.efficacy[rows] = e_new
        self._account(t_set, t_new - t_old, e_new - e_old)
        good = satisfied.astype(bool)
        self.last_good_channel[who[good]] = channel[good]
        self.changed.append(who)

    def _learn_distinct(self, who: np.ndarray, perm: np.ndarray, satisfied: np.ndarray, resolved: np.ndarray,
                        channel: np.ndarray, now: float) -> None:
        """:meth:`learn` for outcomes of distinct people (``perm`` sorts ``who``): the same operations on the same
        values, in the order of ``who`` instead of the sorted rows (each person's values alone; no ``np.add.at``
        needed), and the running sums taken over the rows in sorted order as there."""
        c = self.model.settings.citizens
        kern = self.model.kernels
        if kern.COMPILED:  # the same operations, element by element in two kernels around np.exp
            t, f = kern.bring_up_args(who, self.t_set, now, self.tau_h)
            np.exp(f, out=f)
            d_t, d_e = kern.learn_distinct(who, f, t, satisfied, resolved, c.trust_learning_rate,
                                           c.efficacy_learning_rate, self.trust, self.trust0, self.efficacy,
                                           self.efficacy0, self.t_set, self.trust_change, self.last_good_channel,
                                           channel)
            self._account(t[perm], d_t[perm], d_e[perm])
            return
        # _bring_up
        t_prev = self.t_set[who]
        t = np.maximum(t_prev, now)
        f = np.exp(-(t - t_prev) / self.tau_h)
        b = self.trust0[who]
        t_old = b + (self.trust[who] - b) * f
        b = self.efficacy0[who]
        e_old = b + (self.efficacy[who] - b) * f
        # the outcome: one addition each, then the clip
        dt = c.trust_learning_rate * (satisfied.astype(float) - t_old)
        t_new = np.minimum(1.0, np.maximum(0.0, t_old + dt))
        e_new = np.minimum(1.0, np.maximum(0.0, e_old + c.efficacy_learning_rate * (resolved.astype(float) - e_old)))
        self.trust[who] = t_new
        self.efficacy[who] = e_new
        self.t_set[who] = t
        self.trust_change[who] += dt
        self._account(t[perm], (t_new - t_old)[perm], (e_new - e_old)[perm])
        good = satisfied.astype(bool)
        self.last_good_channel[who[good]] = channel[good]

    def _learn_one(self, r: int, sat: float, resolved: float, channel: np.ndarray, now: float) -> None:
        """:meth:`learn` for one outcome (row ``r``; ``sat`` and ``resolved`` 1.0 or 0.0; ``channel`` of length
        1), in Python floats: the same operations in the same order as the array version (IEEE arithmetic,
        ``np.exp``, and the clip to 0–1 that ``np.clip`` makes), without a numpy call for each."""
        c = self.model.settings.citizens
        tau = self.tau_h
        # _bring_up: relax to now (never back)
        ts = float(self.t_set[r])
        t = ts if (ts > now or ts != ts) else now  # np.maximum(t_set, now)
        f = float(np.exp(-(t - ts) / tau))
        b = float(self.trust0[r])
        t_old = b + (float(self.trust[r]) - b) * f
        b = float(self.efficacy0[r])
        e_old = b + (float(self.efficacy[r]) - b) * f
        # the outcome
        dt = c.trust_learning_rate * (sat - t_old)
        t_new = _clip01(t_old + dt)
        e_new = _clip01(e_old + c.efficacy_learning_rate * (resolved - e_old))
        self.trust[r] = t_new
        self.efficacy[r] = e_new
        self.t_set[r] = t
        self.trust_change[r] += dt
        # _account
        x = (t - self._t_ref) / tau
        if x > self.REBASE_EXPONENT:
            self._rebase()
        else:
            w = float(np.exp(x))
            self._s_trust += (t_new - t_old) * w  # the sum of one product is that product
            self._s_efficacy += (e_new - e_old) * w
        if sat:
            self.last_good_channel[r] = channel[0]

    #: Outcomes (of distinct people) up to which :meth:`learn` works in Python floats (:meth:`_learn_few`).
    FEW = 16

    def _learn_few(self, who: np.ndarray, wl: list[int], satisfied: np.ndarray, resolved: np.ndarray,
                   channel: np.ndarray, now: float) -> None:
        """:meth:`learn` for a few outcomes of distinct people (``wl``: ``who`` as a list), in Python floats
        where the array version makes one numpy call per step: the same operations in the same order (IEEE
        arithmetic; ``np.exp`` and the running sums (:func:`_weighted_sum`) on arrays as there, the sums over the
        rows in sorted order). One ``np.exp`` call takes both the relaxation factors and the running sums'
        weights (an element's exp does not depend on the others in its array)."""
        c = self.model.settings.citizens
        tau = self.tau_h
        k = len(wl)
        trust, efficacy, t_set = self.trust, self.efficacy, self.t_set
        ts = t_set[who].tolist()
        t = [a if (a > now or a != a) else now for a in ts]  # np.maximum(t_set, now)
        # _account's exponents, over the rows in sorted order (the order of the array version's distinct rows)
        order = sorted(range(k), key=wl.__getitem__)
        t_ref = self._t_ref
        x = [(t[i] - t_ref) / tau for i in order]
        rebase = max(x) > self.REBASE_EXPONENT and all(v == v for v in x)  # as the array's max (NaN if any is)
        args = [-(b - a) / tau for b, a in zip(t, ts, strict=True)]
        if not rebase:
            args += x
        e = np.exp(np.array(args)).tolist()
        t_old = [b + (v - b) * g for b, v, g in zip(self.trust0[who].tolist(), trust[who].tolist(), e,
                                                     strict=False)]
        e_old = [b + (v - b) * g for b, v, g in zip(self.efficacy0[who].tolist(), efficacy[who].tolist(), e,
                                                     strict=False)]
        lr, elr = c.trust_learning_rate, c.efficacy_learning_rate
        sat = satisfied.tolist()
        dt = [lr * (float(s) - v) for s, v in zip(sat, t_old, strict=True)]
        t_new = [_clip01(v + d) for v, d in zip(t_old, dt, strict=True)]
        e_new = [_clip01(v + elr * (float(s) - v)) for s, v in zip(resolved.tolist(), e_old, strict=True)]
        tc = self.trust_change
        for r, a, b, tt, d in zip(wl, t_new, e_new, t, dt, strict=True):  # who are distinct: element by element
            trust[r] = a
            efficacy[r] = b
            t_set[r] = tt
            tc[r] += d
        if rebase:
            self._rebase()
        else:
            ow = list(zip(order, e[k:], strict=True))
            self._s_trust += float(np.add.reduce(np.array([(t_new[i] - t_old[i]) * g for i, g in ow])))
            self._s_efficacy += float(np.add.reduce(np.array([(e_new[i] - e_old[i]) * g for i, g in ow])))
        if all(sat):  # every outcome good (who are distinct): the channels without a selection
            self.last_good_channel[who] = channel
        elif any(sat):
            cl = channel.tolist()
            lgc = self.last_good_channel
            for r, s, ch in zip(wl, sat, cl, strict=True):
                if s:
                    lgc[r] = ch

    def spread_trust(self, now: float | None = None) -> None:
        """Once a day: each contact of someone whose trust changed today moves by a share of that change
        (after relaxing the contact's trust to ``now``, hours; default: the model's clock).

        Cost grows with the day's experiences, not with the population.
        """
        c = self.model.settings.citizens
        if not self.changed:
            return
        now = self._now(now)
        who = self._distinct(np.concatenate(self.changed))
        self.changed = []
        if self.contacts.shape[1] and c.social_influence > 0:
            k = self.contacts.shape[1]
            delta = self.trust_change[who]
            # the listeners of `who` are those who have them as contacts; approximate the reverse edges by
            # the forward ones (the graph is built with mostly reciprocal local ties)
            listeners = np.take(self.contacts, who, axis=0).ravel()  # contacts[who], without fancy indexing's cost
            shift = np.repeat(delta * c.social_influence / k, k)
            rows = self._distinct(listeners)
            # as _bring_up, then np.add.at and the clip, in one kernel (sim.kernels; same operations, same order)
            kern = self.model.kernels
            if kern.COMPILED:
                t_set, f = kern.bring_up_args(rows, self.t_set, now, self.tau_h)
                np.exp(f, out=f)
            else:
                t_prev = self.t_set[rows]
                t_set = np.maximum(t_prev, now)
                f = np.exp(-(t_set - t_prev) / self.tau_h)
            t_old, t_new = self.model.kernels.relax_and_shift(rows, t_set, f, self.trust, self.trust0,
                                                              self.efficacy, self.efficacy0, self.t_set,
                                                              listeners, shift)
            self._account(t_set, t_new - t_old, None)
        self.trust_change[who] = 0.0
