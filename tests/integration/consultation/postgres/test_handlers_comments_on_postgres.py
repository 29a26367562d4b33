"""tests/unit/consultation/test_handlers_comments.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_comments import *  # noqa: F401,F403
