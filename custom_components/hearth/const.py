"""Constants for the Hearth integration."""

import logging
from typing import Final

DOMAIN: Final = "hearth"
LOGGER = logging.getLogger(__package__)

# Every config entry says what it is, so later entry kinds (the neighbourhood backend)
# can share the domain without the sensor code assuming every entry is a sensor.
CONF_KIND: Final = "kind"
KIND_I2C: Final = "i2c"
KIND_UART: Final = "uart"
SENSOR_KINDS: Final = frozenset({KIND_I2C, KIND_UART})

CONF_BUS: Final = "bus"  # "/dev/i2c-1", or SIMULATED_BUS
CONF_ADDRESS: Final = "address"  # 7-bit I2C address
CONF_MODEL: Final = "model"  # key of I2C_DRIVERS / SERIAL_DRIVERS
CONF_PORT: Final = "port"  # serial port path, /dev/serial/by-id/... when there is one
CONF_SHUNT_OHMS: Final = "shunt_ohms"  # INA219
CONF_MAX_CURRENT: Final = "max_current_a"  # INA219

SIMULATED_BUS: Final = "simulated"

# Options
CONF_SCAN_INTERVAL: Final = "scan_interval"  # seconds; 0 = continuous for streaming devices
CONF_OUTLIER_FILTER: Final = "outlier_filter"
CONF_FILTER_WINDOW: Final = "filter_window"
CONF_CALIBRATION: Final = "calibration"  # {quantity: {"offset": x, "multiplier": y}}
CONF_OFFSET: Final = "offset"
CONF_MULTIPLIER: Final = "multiplier"

DEFAULT_FILTER_WINDOW: Final = 5
MIN_SCAN_INTERVAL: Final = 5
MAX_SCAN_INTERVAL: Final = 3600
# A PMS/SDS fan lasts about 8000 h: either it runs all the time (0 = continuous) or it
# sleeps between readings, which only pays off with at least this long between them.
MIN_DUTY_CYCLE_INTERVAL: Final = 120

# Service calls and attributes
SERVICE_CALIBRATE_CO2: Final = "calibrate_co2"
SERVICE_SET_AUTOMATIC_CALIBRATION: Final = "set_automatic_calibration"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_TARGET_PPM: Final = "target_ppm"
ATTR_ENABLED: Final = "enabled"
