"""Constants shared by the unit tests of several modules."""
from __future__ import annotations

from datetime import timezone

import pytest

UUID = "3f2a5a4e-0000-4000-8000-000000000001"  # web01's, as tests/conftest.py's inventory makes it
UTC = timezone.utc
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
