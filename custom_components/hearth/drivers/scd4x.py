"""Sensirion SCD40/SCD41 photoacoustic CO2 sensor (with temperature and humidity) at 0x62.

The driver keeps the chip in periodic measurement (one result every 5 s). Settings and
forced recalibration are only accepted in idle mode, so those methods stop periodic
measurement (500 ms), issue the command and start it again; the next result then comes
5 s later. In periodic mode the chip answers only a few commands (read_measurement,
get_data_ready_status, stop_periodic_measurement, ...) and NACKs the rest.

read_measurement empties the chip's buffer, so a CRC error there cannot be retried: the
value is lost and the next one arrives with the next 5 s period.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from .base import I2CBus, I2CDriver
from .errors import ChecksumError, NoAckError, NotReadyError
from .i2c_transfer import SensirionLink, Sleep

CMD_START_PERIODIC = 0x21B1
CMD_READ_MEASUREMENT = 0xEC05
CMD_STOP_PERIODIC = 0x3F86
CMD_SET_TEMPERATURE_OFFSET = 0x241D
CMD_PERFORM_FORCED_RECALIBRATION = 0x362F
CMD_SET_ASC_ENABLED = 0x2416
CMD_GET_DATA_READY = 0xE4B8
CMD_PERSIST_SETTINGS = 0x3615
CMD_GET_SERIAL = 0x3682

# Datasheet execution times.
STOP_S = 0.5
FRC_S = 0.4
PERSIST_S = 0.8
COMMAND_S = 0.001

DATA_READY_MASK = 0x07FF
FRC_FAILED = 0xFFFF
FRC_ZERO = 0x8000
TEMPERATURE_OFFSET_RANGE = (0.0, 20.0)  # datasheet's recommended range, °C
CO2_RANGE = (1, 40_000)  # output range, ppm


def temperature_from_raw(raw: int) -> float:
    """Datasheet conversion: T = -45 + 175 * word / (2^16 - 1)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_from_raw(raw: int) -> float:
    """Datasheet conversion: RH = 100 * word / (2^16 - 1)."""
    return 100.0 * raw / 65535.0


def temperature_offset_word(celsius: float) -> int:
    """Datasheet encoding of set_temperature_offset: word = offset * (2^16 - 1) / 175."""
    return round(celsius * 65535.0 / 175.0)


class Scd4x(I2CDriver):
    """SCD40/SCD41 in periodic measurement mode."""

    model: ClassVar[str] = "SCD4x"
    manufacturer: ClassVar[str] = "Sensirion"
    addresses: ClassVar[tuple[int, ...]] = (0x62,)
    quantities: ClassVar[tuple[str, ...]] = ("co2", "temperature", "humidity")

    def __init__(self, bus: I2CBus, address: int, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(bus, address, sleep=sleep)
        self._link = SensirionLink(bus, address, sleep=sleep)

    def serial_number(self) -> int:
        """The 48-bit serial number; only answered in idle mode."""
        words = self._link.query(CMD_GET_SERIAL, 3, COMMAND_S)
        return words[0] << 32 | words[1] << 16 | words[2]

    def data_ready(self) -> bool:
        """True when a new measurement waits in the chip's buffer."""
        (status,) = self._link.query(CMD_GET_DATA_READY, 1, COMMAND_S)
        return bool(status & DATA_READY_MASK)

    def identify(self) -> None:
        """An idle SCD4x answers get_serial_number; a measuring one only get_data_ready_status.

        Both are read-only and CRC-protected, so identification leaves the chip's mode alone
        (a hub restart finds it still measuring).
        """
        try:
            self.serial_number()
        except NoAckError:
            self.data_ready()

    def probe(self) -> None:
        """Read-only identification for bus scans."""
        self.identify()

    def initialize(self) -> None:
        """Stop whatever the chip was doing, then start periodic measurement."""
        self._link.send(CMD_STOP_PERIODIC, wait=STOP_S)
        self._link.send(CMD_START_PERIODIC)

    @contextmanager
    def _idle(self) -> Iterator[None]:
        self._link.send(CMD_STOP_PERIODIC, wait=STOP_S)
        try:
            yield
        finally:
            self._link.send(CMD_START_PERIODIC)

    def read(self) -> dict[str, float]:
        if not self.data_ready():
            raise NotReadyError("the SCD4x has no new measurement yet (one every 5 s)")
        self._link.send(CMD_READ_MEASUREMENT, wait=COMMAND_S)
        try:
            co2, raw_t, raw_rh = self._link.receive(3)
        except ChecksumError as err:
            raise ChecksumError(
                f"{err}; the SCD4x discards a measurement once read, the next comes in 5 s"
            ) from err
        return {
            "co2": float(co2),
            "temperature": temperature_from_raw(raw_t),
            "humidity": humidity_from_raw(raw_rh),
        }

    def set_temperature_offset(self, celsius: float, *, persist: bool = False) -> None:
        """Set how much the chip's own heat raises its temperature reading (default 4 °C).

        The chip subtracts the offset from temperature and recomputes humidity with it.
        `persist` writes it to EEPROM (limited write cycles) so it survives power loss.
        """
        low, high = TEMPERATURE_OFFSET_RANGE
        if not low <= celsius <= high:
            raise ValueError(
                f"temperature offset {celsius} °C is outside {low}..{high} °C; measure the "
                "SCD4x against a reference thermometer and use reading - reference + "
                "current offset"
            )
        with self._idle():
            self._link.send(
                CMD_SET_TEMPERATURE_OFFSET, [temperature_offset_word(celsius)], wait=COMMAND_S
            )
            if persist:
                self._link.send(CMD_PERSIST_SETTINGS, wait=PERSIST_S)

    def set_automatic_self_calibration(self, enabled: bool, *, persist: bool = False) -> None:
        """Turn automatic self-calibration (ASC) on or off.

        ASC assumes the sensor sees fresh outdoor air (about 400 ppm) at least once a week;
        turn it off where that never happens and use forced_recalibration instead.
        """
        with self._idle():
            self._link.send(CMD_SET_ASC_ENABLED, [int(enabled)], wait=COMMAND_S)
            if persist:
                self._link.send(CMD_PERSIST_SETTINGS, wait=PERSIST_S)

    def forced_recalibration(self, target_ppm: int) -> int:
        """Recalibrate to a known CO2 concentration; return the correction applied in ppm.

        Run the sensor for at least 3 minutes in air of constant, known concentration
        (outdoors is about 420 ppm) before calling this.
        """
        low, high = CO2_RANGE
        if not low <= target_ppm <= high:
            raise ValueError(f"target CO2 {target_ppm} ppm is outside {low}..{high} ppm")
        with self._idle():
            self._link.send(CMD_PERFORM_FORCED_RECALIBRATION, [target_ppm], wait=FRC_S)
            (word,) = self._link.receive(1)
        if word == FRC_FAILED:
            raise NotReadyError(
                "the SCD4x rejected forced recalibration; let it measure for at least "
                "3 minutes in air of constant, known CO2 concentration, then retry"
            )
        return word - FRC_ZERO
