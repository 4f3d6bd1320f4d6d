"""The append-only event log under ROOT/events/YYYY-MM-DD/<producer>.jsonl."""

from reconciler.events.log import Event, EventLog, new_event_id

__all__ = ["Event", "EventLog", "new_event_id"]
