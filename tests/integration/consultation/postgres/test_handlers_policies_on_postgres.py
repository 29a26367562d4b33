"""tests/unit/consultation/test_handlers_policies.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_policies import *  # noqa: F401,F403
