"""Fixtures for newsfeed integration tests."""
from .httpserver import feed_server  # noqa: F401
