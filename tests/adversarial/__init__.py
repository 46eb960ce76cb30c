"""Attacks on the protocol by real node processes with one function patched."""
