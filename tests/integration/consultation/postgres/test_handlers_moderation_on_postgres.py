"""tests/unit/consultation/test_handlers_moderation.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_moderation import *  # noqa: F401,F403
