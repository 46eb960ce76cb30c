"""Command-level Sensirion SCD40/SCD41 emulator.

Idle and periodic-measurement modes with the datasheet's rule of which commands each
accepts (others are NACKed), execution times during which the chip NACKs, a result every
5 s that read_measurement consumes, and the settings the driver uses: temperature
offset, automatic self-calibration, forced recalibration, persist to EEPROM and reinit.

Physics: the chip's die runs `self_heating` °C above the air; it reports die temperature
minus its temperature offset (factory default 4 °C) and recomputes humidity for that
temperature (Magnus formula), so a correct offset gives back the Ambient. Reported CO2 is
the Ambient's plus a calibration error, `co2_bias`, which forced recalibration removes;
it fails (0xFFFF) when the chip has not completed a measurement since power-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from .environment import Ambient
from .i2c_bus import I2CNack, Response, SensirionCommandDevice
from .sht3x import raw_humidity, raw_temperature

CMD_START_PERIODIC = 0x21B1
CMD_READ_MEASUREMENT = 0xEC05
CMD_STOP_PERIODIC = 0x3F86
CMD_SET_TEMPERATURE_OFFSET = 0x241D
CMD_GET_TEMPERATURE_OFFSET = 0x2318
CMD_PERFORM_FORCED_RECALIBRATION = 0x362F
CMD_SET_ASC_ENABLED = 0x2416
CMD_GET_ASC_ENABLED = 0x2313
CMD_GET_DATA_READY = 0xE4B8
CMD_PERSIST_SETTINGS = 0x3615
CMD_GET_SERIAL = 0x3682
CMD_REINIT = 0x3646

ACCEPTED_WHILE_MEASURING = {CMD_READ_MEASUREMENT, CMD_STOP_PERIODIC, CMD_GET_DATA_READY}
PERIOD_S = 5.0
STOP_S = 0.5
COMMAND_S = 0.001
FRC_S = 0.4
PERSIST_S = 0.8
REINIT_S = 0.02
DATA_READY = 0x8006  # lower 11 bits non-zero
DATA_NOT_READY = 0x8000
FRC_FAILED = 0xFFFF
FRC_ZERO = 0x8000


@dataclass(frozen=True, slots=True)
class Scd4xSettings:
    """What persist_settings stores in EEPROM and reinit restores."""

    temperature_offset: float = 4.0  # °C
    asc_enabled: bool = True


def saturation_vapour_pressure(celsius: float) -> float:
    """Magnus formula (hPa), enough to move relative humidity between temperatures."""
    return 6.112 * math.exp(17.62 * celsius / (243.12 + celsius))


class Scd4xEmulator(SensirionCommandDevice):
    """An SCD4x measuring an Ambient."""

    def __init__(
        self,
        state: Ambient | None = None,
        *,
        serial_number: int = 0x9E3C_1B07_3F52,
        self_heating: float = 4.0,
        co2_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.state = state if state is not None else Ambient()
        self.serial_number = serial_number
        self.self_heating = self_heating
        self.co2_bias = co2_bias
        self.eeprom = Scd4xSettings()
        self.eeprom_writes = 0
        self._handlers: dict[tuple[int, int], Callable[[list[int]], Response]] = {
            (CMD_START_PERIODIC, 0): self._start,
            (CMD_READ_MEASUREMENT, 0): self._read_measurement,
            (CMD_STOP_PERIODIC, 0): self._stop,
            (CMD_GET_DATA_READY, 0): self._data_ready,
            (CMD_SET_TEMPERATURE_OFFSET, 1): self._set_temperature_offset,
            (CMD_GET_TEMPERATURE_OFFSET, 0): self._get_temperature_offset,
            (CMD_SET_ASC_ENABLED, 1): self._set_asc,
            (CMD_GET_ASC_ENABLED, 0): self._get_asc,
            (CMD_PERFORM_FORCED_RECALIBRATION, 1): self._forced_recalibration,
            (CMD_PERSIST_SETTINGS, 0): self._persist,
            (CMD_GET_SERIAL, 0): self._serial,
            (CMD_REINIT, 0): self._reinit,
        }  # (command, number of argument words) -> handler
        self.power_cycle()

    def power_cycle(self) -> None:
        """Lose power and start again: settings come back from EEPROM, the chip is idle."""
        self.settings = self.eeprom
        self.measuring = False
        self.measured_since_power_up = False
        self._started = 0.0
        self._consumed = 0

    @property
    def temperature_offset(self) -> float:
        return self.settings.temperature_offset

    @property
    def asc_enabled(self) -> bool:
        return self.settings.asc_enabled

    def _completed(self) -> int:
        """Measurements finished since periodic measurement started."""
        return int((self.clock() - self._started) // PERIOD_S) if self.measuring else 0

    def _reading(self) -> tuple[int, int, int]:
        reported_t = self.state.temperature + self.self_heating - self.temperature_offset
        humidity = (
            self.state.humidity
            * saturation_vapour_pressure(self.state.temperature)
            / saturation_vapour_pressure(reported_t)
        )
        co2 = min(0xFFFF, max(0, round(self.state.co2 + self.co2_bias)))
        return co2, raw_temperature(reported_t), raw_humidity(min(100.0, humidity))

    def execute(self, command: int, arguments: list[int]) -> Response:
        if self.measuring and command not in ACCEPTED_WHILE_MEASURING:
            raise I2CNack
        handler = self._handlers.get((command, len(arguments)))
        if handler is None:
            raise I2CNack
        return handler(arguments)

    def _start(self, _: list[int]) -> Response:
        self.measuring, self._started, self._consumed = True, self.clock(), 0
        return Response()

    def _stop(self, _: list[int]) -> Response:
        if self._completed():
            self.measured_since_power_up = True
        self.measuring = False
        return Response(seconds=STOP_S)

    def _data_ready(self, _: list[int]) -> Response:
        ready = self._completed() > self._consumed
        return Response((DATA_READY if ready else DATA_NOT_READY,), COMMAND_S)

    def _read_measurement(self, _: list[int]) -> Response:
        completed = self._completed()
        if completed <= self._consumed:
            return Response(seconds=COMMAND_S)  # empty buffer: the read is NACKed
        self._consumed = completed
        return Response(self._reading(), COMMAND_S)

    def _set_temperature_offset(self, arguments: list[int]) -> Response:
        self.settings = replace(self.settings, temperature_offset=arguments[0] * 175.0 / 65535.0)
        return Response(seconds=COMMAND_S)

    def _get_temperature_offset(self, _: list[int]) -> Response:
        return Response((round(self.temperature_offset * 65535.0 / 175.0),), COMMAND_S)

    def _set_asc(self, arguments: list[int]) -> Response:
        self.settings = replace(self.settings, asc_enabled=bool(arguments[0]))
        return Response(seconds=COMMAND_S)

    def _get_asc(self, _: list[int]) -> Response:
        return Response((int(self.asc_enabled),), COMMAND_S)

    def _forced_recalibration(self, arguments: list[int]) -> Response:
        if not self.measured_since_power_up:
            return Response((FRC_FAILED,), FRC_S)
        correction = round(arguments[0] - (self.state.co2 + self.co2_bias))
        self.co2_bias += correction
        return Response((FRC_ZERO + correction,), FRC_S)

    def _persist(self, _: list[int]) -> Response:
        self.eeprom = self.settings
        self.eeprom_writes += 1
        return Response(seconds=PERSIST_S)

    def _serial(self, _: list[int]) -> Response:
        serial = self.serial_number
        return Response((serial >> 32, (serial >> 16) & 0xFFFF, serial & 0xFFFF), COMMAND_S)

    def _reinit(self, _: list[int]) -> Response:
        self.power_cycle()
        return Response(seconds=REINIT_S)
