"""Flireo: a self-hostable voice-AI phone-agent platform."""

__version__ = "0.1.0"
