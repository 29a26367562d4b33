"""The envelope every event carries; each domain's event schemas subclass `EventSchema`."""
from marshmallow import RAISE, Schema, fields


class EventSchema(Schema):
    """Envelope: `event_id` makes redelivery detectable, `schema_version` lets consumers evolve safely."""

    class Meta:
        unknown = RAISE
        ordered = True

    SCHEMA_VERSION = 1

    event_id = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    schema_version = fields.Integer(required=True)
