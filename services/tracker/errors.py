"""The one root exception of the tracker, and the few kinds callers tell apart."""


class TrackerError(Exception):
    """Base class of every error the tracker raises on purpose."""


class BrokerError(TrackerError):
    """The embedded Kafka broker could not be prepared, started or stopped."""


class InvalidEventError(TrackerError):
    """A record failed validation; ``reason`` is what goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
