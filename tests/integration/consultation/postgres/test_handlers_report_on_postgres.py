"""tests/unit/consultation/test_handlers_report.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_report import *  # noqa: F401,F403
