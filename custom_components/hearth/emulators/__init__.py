"""Register- and frame-level emulators of the sensors Hearth drives (demo and development)."""
