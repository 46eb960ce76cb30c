"""Hearth household node: secret-shared neighbourhood statistics."""

__version__ = "0.1.0"
