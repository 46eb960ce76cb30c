"""Developer tooling: `scripts/develop` runs a whole simulated neighbourhood on one machine."""
