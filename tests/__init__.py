"""Hearth tests."""
