"""Sinks: where events go (records, files, MQTT, webhooks, notifications, S3)."""

from vigil.sinks.base import MemorySink, OutboxMessage, Sink, Transport

__all__ = ["MemorySink", "OutboxMessage", "Sink", "Transport"]
