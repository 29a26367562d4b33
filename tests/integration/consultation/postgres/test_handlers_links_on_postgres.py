"""tests/unit/consultation/test_handlers_links.py, collected again here to run on PostgreSQL (see conftest.py)."""
from tests.unit.consultation.test_handlers_links import *  # noqa: F401,F403
