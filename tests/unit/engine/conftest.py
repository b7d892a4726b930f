"""Engine tests on a real catalog run on both backends (tests/conftest.py's
catalog_location asks for `backend`)."""
import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param
