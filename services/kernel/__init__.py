"""Nameko-free shared kernel: database types, engines and the unit of work with its transactional outbox.

Domain packages may import this; it imports nothing from nameko, kombu or werkzeug.
"""
