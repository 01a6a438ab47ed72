"""Fake provider servers that speak each provider's wire format, for tests."""
