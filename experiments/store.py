"""The result store of one experiment, written as runs finish and safe to kill at any moment.

Layout (README.md, "The result store"; ``analysis`` reads it)::

    common/store.py                the one module that knows the format: layout, writer, reader

This module re-exports what ``experiments`` (the runner, reruns, export) and its callers use, so that
``from experiments.store import ResultStore, StoreError, load_tables`` keeps working.
"""

from __future__ import annotations

from common.store import (
    MANIFEST,
    PENDING,
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    TIMESERIES_COLUMNS,
    ResultStore,
    StoreError,
    committed_run_ids,
    load_tables,
    read_manifest,
    read_parquet,
    write_json_atomic,
    write_parquet_atomic,
)

__all__ = [
    "MANIFEST", "PENDING", "RUN_COLUMNS", "SUMMARY_COLUMNS", "TIMESERIES_COLUMNS", "ResultStore", "StoreError",
    "committed_run_ids", "load_tables", "read_manifest", "read_parquet", "write_json_atomic",
    "write_parquet_atomic",
]
