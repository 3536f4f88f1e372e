"""Helpers shared by ``experiments`` and ``analysis``: one home for what both sides need.

- :mod:`common.store` — the experiment result store: its layout, the writer (:class:`~common.store.ResultStore`)
  and the reader (:func:`~common.store.read_tables`), and the one :class:`~common.store.StoreError`;
- :mod:`common.stats` — Student-t intervals and paired differences over replications;
- :mod:`common.formatting` — numbers and settings as text for tables and reports;
- :mod:`common.progress` — the rich progress bar of long jobs;
- :mod:`common.provenance` — git commit and package versions recorded with results;
- :mod:`common.models` — the strict pydantic base of the spec files;
- :mod:`common.dotted` — dotted scenario keys (``policy.tracking``) to and from nested mappings.

Import direction: ``experiments`` and ``analysis`` import ``common``; ``common`` may import ``sim`` but never
``experiments`` or ``analysis``.
"""
