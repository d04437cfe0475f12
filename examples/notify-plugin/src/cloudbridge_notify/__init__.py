"""cloudbridge-notify: posts a JSON webhook, and optionally a desktop notification, on job events."""

__version__ = "0.1.0"
