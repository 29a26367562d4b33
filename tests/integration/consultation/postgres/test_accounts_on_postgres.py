"""tests/unit/consultation/test_accounts.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_accounts import *  # noqa: F401,F403
