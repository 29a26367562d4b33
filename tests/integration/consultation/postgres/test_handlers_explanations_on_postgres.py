"""tests/unit/consultation/test_handlers_explanations.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_explanations import *  # noqa: F401,F403
