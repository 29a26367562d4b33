"""tests/unit/consultation/test_ratelimit.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_ratelimit import *  # noqa: F401,F403
