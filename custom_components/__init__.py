"""Custom integrations shipped by this repository (tests import them from here)."""
