"""Skip markers the tests share."""

from __future__ import annotations

import importlib.util

import pytest

# Tests of the Ray executor and backend: skipped, saying how to get Ray, where it is not installed.
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install 'fleetsim[ray]')")
