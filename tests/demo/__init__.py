"""The whole simulated neighbourhood, run the way a newcomer runs it."""
