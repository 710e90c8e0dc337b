"""Flireo's own asyncio SIP layer (see docs/architecture.md: why we own it)."""
