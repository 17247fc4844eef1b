"""Settings for the whole suite: what a test sees must not depend on how pytest was started."""

from __future__ import annotations

import os

# pytest-xdist's workers (and some terminals) export COLUMNS/LINES; the CLI's output width follows COLUMNS,
# so a child `hyperhive` command would wrap its messages at 80 columns under `-n 2` and not without it.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
