"""Constants for the Hearth integration."""

from typing import Final

DOMAIN: Final = "hearth"
