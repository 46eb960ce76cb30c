"""Texas Instruments INA219 current, voltage and power monitor at 0x40..0x4F.

16-bit big-endian registers behind an 8-bit pointer. The chip computes current and power
itself once the calibration register is programmed (datasheet 8.5.1):

    Current_LSB = max_expected_current / 2^15     (or a rounder value between that and
                                                   max_expected_current / 2^12)
    Cal         = trunc(0.04096 / (Current_LSB * R_shunt))
    Power_LSB   = 20 * Current_LSB

The configuration stays at its reset value 0x399F (32 V bus range, ±320 mV shunt range,
12-bit conversions, shunt and bus continuous), which keeps one identification heuristic
valid across restarts: the INA219 has no ID register, so probe() (used by bus scans)
accepts a device whose configuration register reads 0x399F, and identify() first resets
the chip (configuration bit 15) and then expects 0x399F. Any chip that happens to show
0x399F at register 0 would pass; the user confirms the chip in the config flow.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import ClassVar

from .base import I2CBus, I2CDriver
from .errors import ChipMismatchError, DriverError, NotReadyError
from .i2c_transfer import Sleep, bus_errors

REG_CONFIG = 0x00
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05

CONFIG_RESET_VALUE = 0x399F
CONFIG_RESET_BIT = 0x8000
BUS_OVF = 0x0001
BUS_VOLTAGE_LSB_V = 0.004
SHUNT_RANGE_V = Fraction(32, 100)  # PGA /8 of the reset configuration
CALIBRATION_SCALE = Fraction(4096, 100_000)  # the datasheet's 0.04096
CALIBRATION_MAX = 0xFFFF
CALIBRATION_VOID_BIT = 0x0001  # reads back as 0
# Current and power use a new calibration from the end of the next conversion: one
# 12-bit shunt plus one 12-bit bus conversion (2 x 532 us) in the reset configuration.
CONVERSION_CYCLE_S = 0.0011


class MeasurementOverflowError(DriverError):
    """The INA219 flagged a math overflow: current or power exceeded the calibrated range."""


def _exact(value: float) -> Fraction:
    # The decimal the user typed, so trunc() in the calibration formula is not thrown off
    # by binary rounding (0.04096 / (0.0001 * 0.1) must give 4096, not 4095).
    return Fraction(repr(value))


def calibration_for(
    shunt_ohms: float, max_current_a: float, current_lsb_a: float | None = None
) -> tuple[int, Fraction]:
    """Calibration register value and the Current_LSB (A) it implies, per the datasheet."""
    if shunt_ohms <= 0 or max_current_a <= 0:
        raise ValueError("shunt_ohms and max_current_a must be positive")
    shunt, max_current = _exact(shunt_ohms), _exact(max_current_a)
    if max_current * shunt > SHUNT_RANGE_V:
        raise ValueError(
            f"{max_current_a} A through {shunt_ohms} Ω drops more than the INA219's 320 mV "
            "shunt range; use a smaller shunt or a lower max_current_a"
        )
    minimum_lsb, maximum_lsb = max_current / 2**15, max_current / 2**12
    if current_lsb_a is None:
        lsb = minimum_lsb
    else:
        lsb = _exact(current_lsb_a)
        if not minimum_lsb <= lsb <= maximum_lsb:
            raise ValueError(
                f"current_lsb_a must lie between max_current_a/2^15 ({float(minimum_lsb):.3g} A) "
                f"and max_current_a/2^12 ({float(maximum_lsb):.3g} A)"
            )
    calibration = int(CALIBRATION_SCALE / (lsb * shunt))
    if not 2 <= calibration <= CALIBRATION_MAX:
        raise ValueError(
            f"calibration {calibration} does not fit the 16-bit register; check shunt_ohms "
            "and max_current_a"
        )
    return calibration, lsb


class Ina219(I2CDriver):
    """INA219 with a shunt of `shunt_ohms` and currents up to `max_current_a`."""

    model: ClassVar[str] = "INA219"
    manufacturer: ClassVar[str] = "Texas Instruments"
    addresses: ClassVar[tuple[int, ...]] = tuple(range(0x40, 0x50))
    quantities: ClassVar[tuple[str, ...]] = ("voltage", "current", "power")

    def __init__(
        self,
        bus: I2CBus,
        address: int,
        *,
        shunt_ohms: float = 0.1,
        max_current_a: float = 3.2,
        current_lsb_a: float | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(bus, address, sleep=sleep)
        self.calibration, lsb = calibration_for(shunt_ohms, max_current_a, current_lsb_a)
        self.current_lsb = float(lsb)
        self.power_lsb = float(20 * lsb)

    def _read(self, register: int) -> int:
        with bus_errors(self.address):
            high, low = self.bus.read_i2c_block_data(self.address, register, 2)
        return high << 8 | low

    def _write(self, register: int, value: int) -> None:
        with bus_errors(self.address):
            self.bus.write_i2c_block_data(self.address, register, [value >> 8, value & 0xFF])

    def _expect_reset_configuration(self) -> None:
        config = self._read(REG_CONFIG)
        if config != CONFIG_RESET_VALUE:
            raise ChipMismatchError(
                f"register 0x00 at 0x{self.address:02X} reads 0x{config:04X}, not the INA219 "
                "reset configuration 0x399F"
            )

    def identify(self) -> None:
        """Reset the chip and expect the configuration reset value 0x399F."""
        self._write(REG_CONFIG, CONFIG_RESET_BIT)
        self._expect_reset_configuration()

    def probe(self) -> None:
        """Scan heuristic: configuration reads 0x399F (the driver never changes it)."""
        self._expect_reset_configuration()

    def initialize(self) -> None:
        self._write(REG_CONFIG, CONFIG_RESET_VALUE)
        self._write(REG_CALIBRATION, self.calibration)
        self._sleep(CONVERSION_CYCLE_S)

    def read(self) -> dict[str, float]:
        # A supply glitch resets the chip and with it the calibration, after which current
        # and power silently read 0: check, and restore it.
        if self._read(REG_CALIBRATION) != self.calibration & ~CALIBRATION_VOID_BIT:
            self._write(REG_CALIBRATION, self.calibration)
            raise NotReadyError(
                "the INA219 had lost its calibration (reset or supply glitch); it is "
                "restored and the next reading will be valid"
            )
        bus = self._read(REG_BUS_VOLTAGE)
        if bus & BUS_OVF:
            raise MeasurementOverflowError(
                f"INA219 at 0x{self.address:02X} reports a math overflow: the current "
                "exceeds the range set by max_current_a (or the shunt drop exceeds 320 mV)"
            )
        current = self._read(REG_CURRENT)
        current -= (current & 0x8000) << 1
        return {
            "voltage": (bus >> 3) * BUS_VOLTAGE_LSB_V,
            "current": current * self.current_lsb,
            "power": self._read(REG_POWER) * self.power_lsb,
        }
