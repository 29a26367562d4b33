"""Top-level test configuration.

nameko 2.14's pytest plugin no longer monkey-patches eventlet, so it is done here, before anything else is imported.
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import pathlib  # noqa: E402

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = pathlib.Path(os.environ.get("TRIAL_BALLOON_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """The third-party data beside the project; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"dataset folder {SHARED_DATA} is absent")
    return SHARED_DATA
