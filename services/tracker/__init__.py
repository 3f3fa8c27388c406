"""Event-sourced tracker of bilateral trade, energy and defense commitments."""

__version__ = "0.1.0"
