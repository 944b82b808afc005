"""Process-wide settings the command line applies once at start-up (never at import)."""

from __future__ import annotations

import warnings

import pyarrow as pa
from threadpoolctl import threadpool_limits


def configure_process() -> None:
    """Settings that suit a long-running exporter process, measured on 2-core machines."""
    # BLAS thread pools spin between calls and would take the cores the parse thread and
    # the counting thread need; the exporter's matrices (features x rows, or a reference's
    # rows x a few dozen features) are too thin to gain from them (measured: 20% faster
    # ingest, 20% less CPU; after a reference fit, 0.04 s of CPU for 10k rows instead of
    # 0.13-0.16 s while woken threads kept spinning).
    threadpool_limits(limits=1, user_api="blas")
    # The exporter is arrow's only user in its process: the system allocator reuses what
    # the reference fit and numpy freed, where arrow's own (mimalloc) maps fresh memory and
    # keeps it (measured at 1M rows: peak RSS 370-395 MB instead of 405-425 MB).
    pa.set_memory_pool(pa.system_memory_pool())
    # scipy's exact KS sum can round past 1 for equal sizes when p is within rounding of 1;
    # it then warns and uses its asymptotic value, which exporter.stats.ks detects itself.
    warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
