"""tests/unit/consultation/test_events.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_events import *  # noqa: F401,F403
