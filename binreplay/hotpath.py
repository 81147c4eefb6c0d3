"""The compiled hot path (binreplay/_hotpath.c) when the install built it, else None.

Its functions only take the common case off Python's hands and return None for anything else, so
every caller keeps its pure-Python path, which stays the definition of every rule and error.
BINREPLAY_PURE_PYTHON=1 switches the compiled path off (the tests compare both paths).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

compiled: ModuleType | None = None
if os.environ.get("BINREPLAY_PURE_PYTHON", "") in ("", "0"):
    try:
        compiled = importlib.import_module("binreplay._hotpath")
    except ImportError:   # installed without a C compiler: the pure-Python path
        compiled = None
