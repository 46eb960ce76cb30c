"""Sensor drivers: one module per chip or serial protocol, no Home Assistant imports."""
