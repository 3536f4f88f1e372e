"""Analysis of experiment result stores: tables with uncertainty, figures and the report.

``analysis`` reads a store written by ``experiments`` (or in-memory tables with the same columns) and never
runs the model::

    from analysis import load_store, kpi_table, paired_differences, write_report
    store = load_store("results/reforms")           # StoreError if missing or corrupt
    print(format_kpi_table(kpi_table(store), store.scenarios))
    paths = write_report("results/reforms")         # {"html": .../report.html, "md": .../report.md, ...}

``analysis`` imports ``sim`` and ``common`` (the store reader, t intervals, formatting); ``StoreError`` is
:class:`common.store.StoreError`, the same class as ``experiments.StoreError``.
"""

from .report import ReportError, write_report
from .store import Store, StoreError, as_store, load_store
from .summarize import (
    format_kpi_table,
    format_paired_differences,
    group_table,
    kpi_table,
    level_table,
    paired_differences,
    queue_table,
    summary_text,
    t_interval,
)

__all__ = [
    "ReportError", "Store", "StoreError", "as_store", "format_kpi_table", "format_paired_differences",
    "group_table", "kpi_table", "level_table", "load_store", "paired_differences", "queue_table", "summary_text",
    "t_interval", "write_report",
]
