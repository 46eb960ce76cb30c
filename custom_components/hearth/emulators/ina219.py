"""Register-level Texas Instruments INA219 emulator.

16-bit registers behind a pointer, MSB first. The shunt and bus voltage registers come
from a Circuit (current through a `shunt_ohms` resistor, bus voltage at IN-), and the
chip's own arithmetic fills the rest, as in the datasheet:

    Current = trunc(ShuntVoltage * Calibration / 4096)
    Power   = trunc(|Current| * BusVoltage / 5000)

with the calibration register's bit 0 void, a new calibration used from the end of the
next conversion, current and power 0 while the calibration is 0, the shunt saturating at
the PGA range, OVF when current or power overflow (or the shunt saturates), and CNVR set
after each conversion and cleared by reading power or writing the configuration.
Modes: power-down, triggered and continuous, shunt/bus/both. ADC resolution and averaging
set the conversion time; the values are not requantised. Pointer values beyond 0x05 are
NACKed (the datasheet leaves them undefined).
"""

from __future__ import annotations

import math

from .environment import Circuit
from .i2c_bus import EmulatedI2CDevice, I2CNack

REG_CONFIG, REG_SHUNT, REG_BUS, REG_POWER, REG_CURRENT, REG_CALIBRATION = range(6)
CONFIG_RESET = 0x399F
CONFIG_RESET_BIT = 0x8000
SHUNT_LSB_V = 10e-6
BUS_LSB_V = 0.004
SHUNT_LIMIT_COUNTS = (4000, 8000, 16000, 32000)  # PGA /1, /2, /4, /8
# ADC setting (BADC/SADC) -> conversion time in seconds
CONVERSION_S = {0: 84e-6, 1: 148e-6, 2: 276e-6, 3: 532e-6, 8: 532e-6, 9: 1.06e-3,
                10: 2.13e-3, 11: 4.26e-3, 12: 8.51e-3, 13: 17.02e-3, 14: 34.05e-3,
                15: 68.10e-3}  # fmt: skip
MODE_SHUNT, MODE_BUS, MODE_CONTINUOUS = 0b001, 0b010, 0b100


def _adc_seconds(setting: int) -> float:
    # Codes 0X00..0X11 with X = don't care mean 9..12-bit single samples.
    return CONVERSION_S[setting if setting & 0b1000 else setting & 0b0011]


class Ina219Emulator(EmulatedI2CDevice):
    """An INA219 on a board with a `shunt_ohms` shunt, measuring a Circuit."""

    def __init__(self, state: Circuit | None = None, *, shunt_ohms: float = 0.1) -> None:
        super().__init__()
        self.state = state if state is not None else Circuit()
        self.shunt_ohms = shunt_ohms
        self.pointer = REG_CONFIG
        self._reset()

    def _reset(self) -> None:
        self.config = CONFIG_RESET
        self.calibration = 0
        self._previous_calibration = 0
        self._calibration_at = float("-inf")
        self._shunt = 0
        self._bus = 0
        self._shunt_saturated = False
        self._cnvr_at = float("-inf")  # converting continuously since long before

    # Conversion model -------------------------------------------------------------

    @property
    def _mode(self) -> int:
        return self.config & 0x07

    def _conversion_seconds(self) -> float:
        seconds = 0.0
        if self._mode & MODE_SHUNT:
            seconds += _adc_seconds((self.config >> 3) & 0x0F)
        if self._mode & MODE_BUS:
            seconds += _adc_seconds((self.config >> 7) & 0x0F)
        return seconds

    def _restart_conversions(self) -> None:
        """A mode write (or a power read) clears CNVR until the next conversion ends."""
        converting = self._mode not in (0b000, 0b100)
        self._cnvr_at = self.clock() + self._conversion_seconds() if converting else float("inf")
        if converting and not self._mode & MODE_CONTINUOUS:
            self._sample()  # triggered: one conversion of the present state

    def _sample(self) -> None:
        if self._mode & MODE_SHUNT:
            limit = SHUNT_LIMIT_COUNTS[(self.config >> 11) & 0x03]
            counts = round(self.state.current * self.shunt_ohms / SHUNT_LSB_V)
            self._shunt_saturated = abs(counts) > limit
            self._shunt = max(-limit, min(limit, counts))
        if self._mode & MODE_BUS:
            full_scale = 8191 if self.config & 0x2000 else 4095
            self._bus = max(0, min(full_scale, round(self.state.bus_voltage / BUS_LSB_V)))

    def _live(self) -> None:
        if self._mode & MODE_CONTINUOUS and self._mode != 0b100:
            self._sample()

    def _effective_calibration(self) -> int:
        if self.clock() >= self._calibration_at:
            return self.calibration
        return self._previous_calibration

    def _current_and_power(self) -> tuple[int, int, bool]:
        current = math.trunc(self._shunt * self._effective_calibration() / 4096)
        overflow = self._shunt_saturated or not -0x8000 <= current <= 0x7FFF
        current = max(-0x8000, min(0x7FFF, current))
        power = math.trunc(abs(current) * self._bus / 5000)
        overflow = overflow or power > 0xFFFF
        return current, min(power, 0xFFFF), overflow

    def _register(self, register: int) -> int:
        self._live()
        current, power, overflow = self._current_and_power()
        if register == REG_CONFIG:
            return self.config
        if register == REG_SHUNT:
            return self._shunt & 0xFFFF
        if register == REG_BUS:
            cnvr = self.clock() >= self._cnvr_at
            return self._bus << 3 | int(cnvr) << 1 | int(overflow)
        if register == REG_POWER:
            if self._mode & MODE_CONTINUOUS:
                self._cnvr_at = self.clock() + self._conversion_seconds()
            else:
                self._cnvr_at = float("inf")
            return power
        if register == REG_CURRENT:
            return current & 0xFFFF
        return self.calibration

    # Bus side ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        if data[0] > REG_CALIBRATION:
            raise I2CNack
        self.pointer = data[0]
        if len(data) >= 3:
            value = data[1] << 8 | data[2]
            if self.pointer == REG_CONFIG:
                if value & CONFIG_RESET_BIT:
                    self._reset()
                else:
                    self.config = value
                self._restart_conversions()
            elif self.pointer == REG_CALIBRATION:
                self._previous_calibration = self._effective_calibration()
                self._calibration_at = self.clock() + self._conversion_seconds()
                self.calibration = value & 0xFFFE

    def read(self, length: int) -> bytes:
        # The pointer does not advance: longer reads repeat the register.
        value = self._register(self.pointer).to_bytes(2, "big")
        return (value * (length // 2 + 1))[:length]
