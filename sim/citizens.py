"""Citizens and enterprises: who meets problems, who reports them, how, and what they make of the outcome.

Citizens are a vectorised population with agent-level rules: not Mesa agents, but one row each of
columnar state (one array per attribute over the whole population), so that millions of requesters
cost little. Each rule is written for one requester and applied at once to whoever acts in a step:

* ``report``: Epstein-style threshold rule (Epstein 2002; docs/sources.md, S21): report when
  ``severity × efficacy − channel_cost − threshold + ε > 0``, ε logistic with scale ``report_noise``.
* ``choose_channel``: multinomial logit over open channels: cost, digital access (online needs it),
  and stickiness to the channel that last satisfied.
* ``judge``: satisfaction score ``w_r·solved + w_a·answered + w_t·timeliness − w_p·perfunctory + ε``
  against ``satisfaction_threshold``; timeliness = exp(−elapsed / (2·expected_response_h)).
* ``learn``: trust and efficacy move toward the outcome with learning rates; the day's changes spread
  once a day to contacts on a sparse social network (a share ``social_influence`` of each change).
* ``escalate``: grievance = severity × (1 − trust) (Epstein's hardship × (1 − legitimacy)); escalate
  when grievance + ε exceeds ``escalation_threshold`` (lower by ``threat_escalation_shift`` for a requester
  who threatened to tell the upper level or to act collectively: the threat is carried out more readily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .cases import Channel

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


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
        for j in np.flatnonzero(ent_counts):
            self.enterprise[self.offset[j, 1]: self.offset[j, 1] + ent_counts[j]] = True
        self.urban = urban[self.region]
        access = np.where(self.urban, w.digital_access_urban, w.digital_access_rural)
        access = np.where(self.enterprise, np.maximum(access, 0.95), access)
        self.digital = rng.random(n) < access
        sd = c.heterogeneity
        self.trust = np.clip(rng.normal(c.initial_trust, sd, n), 0.0, 1.0)
        self.efficacy = np.clip(rng.normal(c.initial_efficacy, sd, n), 0.0, 1.0)
        self.last_good_channel = np.full(n, -1, dtype=np.int8)
        self.trust_change = np.zeros(n)  # today's change, spread to contacts at the end of the day
        self.changed: list[np.ndarray] = []
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
        local = rng.random((n, k)) < local_share
        start = self.offset[self.region, 0]
        size = self.count[self.region, 0] + self.count[self.region, 1]
        local_pick = start[:, None] + (rng.random((n, k)) * size[:, None]).astype(np.int64)
        any_pick = rng.integers(0, n, size=(n, k))
        self.contacts = np.where(local, local_pick, any_pick).astype(np.int32)

    # ----------------------------------------------------------------------------------------------
    def pick_requesters(self, township: np.ndarray, enterprise: np.ndarray, rng: np.random.Generator
                        ) -> np.ndarray:
        """A random requester of the given kind in each township (falls back to the other kind if none)."""
        kind = enterprise.astype(np.int64)
        cnt = self.count[township, kind]
        kind = np.where(cnt == 0, 1 - kind, kind)
        cnt = self.count[township, kind]
        start = self.offset[township, kind]
        return (start + (rng.random(len(township)) * cnt).astype(np.int64)).astype(np.int64)

    def choose_channel(self, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.model.settings.citizens
        open_ = self.model.settings.platform.channels
        n = len(who)
        if c.channel_mix is not None:
            mix = np.array([c.channel_mix.get(k, 0.0) for k in ("online", "hotline", "offline")])
            return rng.choice(3, size=n, p=mix / mix.sum()).astype(np.int8)
        util = np.empty((n, 3))
        util[:, Channel.ONLINE] = np.where(self.digital[who] & open_.online, -c.channel_cost_online, -np.inf)
        util[:, Channel.HOTLINE] = -c.channel_cost_hotline if open_.hotline else -np.inf
        util[:, Channel.OFFLINE] = -c.channel_cost_offline if open_.offline else -np.inf
        last = self.last_good_channel[who]
        has = last >= 0
        util[np.flatnonzero(has), last[has]] += c.channel_stickiness
        gumbel = -np.log(-np.log(rng.random((n, 3))))
        choice = np.argmax(util / c.channel_choice_scale + gumbel, axis=1).astype(np.int8)
        # no open channel for this requester (e.g. online only, without internet access): -1, cannot report
        return np.where(np.isfinite(util).any(axis=1), choice, -1).astype(np.int8)

    def report(self, who: np.ndarray, severity: np.ndarray, channel: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """Who of them reports (True) — the threshold rule with logistic noise."""
        c = self.model.settings.citizens
        cost = np.array([c.channel_cost_online, c.channel_cost_hotline, c.channel_cost_offline])[channel]
        x = (severity * self.efficacy[who] - cost - c.report_threshold) / c.report_noise
        return rng.random(len(who)) < 1.0 / (1.0 + np.exp(-x))

    def judge(self, cases: np.ndarray, now: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Satisfied (True) or not, for replied cases."""
        m = self.model
        c = m.settings.citizens
        cs = m.cases
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

    def escalate(self, cases: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        m = self.model
        c = m.settings.citizens
        cs = m.cases
        who = cs.citizen[cases]
        grievance = m.demand.category_severity[cs.category[cases]] * (1.0 - self.trust[who])
        threshold = c.escalation_threshold - c.threat_escalation_shift * (cs.tattle[cases] | cs.collective[cases])
        return grievance + rng.logistic(0.0, c.escalation_noise, len(cases)) > threshold

    def learn(self, who: np.ndarray, satisfied: np.ndarray, resolved: np.ndarray,
              channel: np.ndarray) -> None:
        """Move trust and efficacy toward the outcome; remember a channel that worked."""
        c = self.model.settings.citizens
        if len(who) == 0:
            return
        sat = satisfied.astype(float)
        # several outcomes for one person in a step: apply them in order (np.add.at keeps them all)
        dt = c.trust_learning_rate * (sat - self.trust[who])
        np.add.at(self.trust, who, dt)
        self.trust[who] = np.clip(self.trust[who], 0.0, 1.0)  # touch only these rows: cost ∝ outcomes
        np.add.at(self.trust_change, who, dt)
        de = c.efficacy_learning_rate * (resolved.astype(float) - self.efficacy[who])
        np.add.at(self.efficacy, who, de)
        self.efficacy[who] = np.clip(self.efficacy[who], 0.0, 1.0)
        good = satisfied.astype(bool)
        self.last_good_channel[who[good]] = channel[good]
        self.changed.append(who)

    def spread_trust(self) -> None:
        """Once a day: each contact of someone whose trust changed today moves by a share of that change.

        Cost grows with the day's experiences, not with the population.
        """
        c = self.model.settings.citizens
        if not self.changed:
            return
        who = np.unique(np.concatenate(self.changed))
        self.changed = []
        if self.contacts.shape[1] and c.social_influence > 0:
            delta = self.trust_change[who]
            # the listeners of `who` are those who have them as contacts; approximate the reverse edges by
            # the forward ones (the graph is built with mostly reciprocal local ties)
            listeners = self.contacts[who].ravel()
            shift = np.repeat(delta * c.social_influence / self.contacts.shape[1], self.contacts.shape[1])
            np.add.at(self.trust, listeners, shift)
            self.trust[listeners] = np.clip(self.trust[listeners], 0.0, 1.0)
        self.trust_change[who] = 0.0
