"""tests/unit/consultation/test_handlers_poll.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_poll import *  # noqa: F401,F403
