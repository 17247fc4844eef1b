"""The function objective of :mod:`search_quality`'s service rows, run by ``hyperhive worker`` processes.

``quality_objective:table_objective`` looks a configuration of :func:`search_quality.document`'s space
up in the table of trainings and returns the row's last-epoch validation accuracy, after sleeping the
row's recorded training seconds times ``$SEARCH_QUALITY_TIME_SCALE`` (0 when unset, at most
:data:`MAX_SLEEP_SECONDS`), so that trials stay in flight for a while in proportion to how long they
trained. ``$SEARCH_QUALITY_TABLE`` names the table (default: ``benchmarks/data/digits_cnn_table.json``).

The worker runs it with ``benchmarks/`` on ``PYTHONPATH`` and ``--allow-objective quality_objective``:
this module holds nothing else a submitter could call (every public function of an allowed module is an
objective). A configuration that is not a row of the table fails its trial (``KeyError``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from search_quality import row_lookup

TABLE_ENV = "SEARCH_QUALITY_TABLE"
TIME_SCALE_ENV = "SEARCH_QUALITY_TIME_SCALE"
MAX_SLEEP_SECONDS = 60.0
"""The most one trial sleeps, whatever the scale (the table's longest training is under 30 s)."""
DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "digits_cnn_table.json"


def table_objective(params: dict[str, Any]) -> dict[str, float]:
    """The row's last-epoch ``val_accuracy``, after its training seconds times the time scale."""
    table = Path(os.environ.get(TABLE_ENV) or DEFAULT_TABLE)
    accuracy, seconds = row_lookup(table, params)
    scale = float(os.environ.get(TIME_SCALE_ENV) or 0.0)
    if scale > 0:
        time.sleep(min(seconds * scale, MAX_SLEEP_SECONDS))
    return {"val_accuracy": accuracy}
