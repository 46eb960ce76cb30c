"""Bosch BME280 pressure, temperature and humidity sensor at 0x76 (SDO low) or 0x77.

Register interface with auto-incrementing reads. The raw ADC values are compensated with
the datasheet's integer formulas (BME280_compensate_T_int32, BME280_compensate_P_int64,
bme280_compensate_H_int32) and the per-chip trimming values read once at initialize().
Default operation is Bosch's "weather monitoring" setting: forced mode, x1 oversampling,
filter off, one conversion per poll; normal mode with oversampling and IIR filter is
available for faster polling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from .base import I2CBus, I2CDriver
from .errors import ChipMismatchError, NotReadyError
from .i2c_transfer import Sleep, bus_errors

REG_CALIB_TP = 0x88  # 0x88..0xA1: dig_T1..dig_P9, reserved 0xA0, dig_H1 at 0xA1
CALIB_TP_LENGTH = 26
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB_H = 0xE1  # 0xE1..0xE7: dig_H2..dig_H6
CALIB_H_LENGTH = 7
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7  # 0xF7..0xFE: press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb
DATA_LENGTH = 8

CHIP_ID_BME280 = 0x60
RESET_WORD = 0xB6
STATUS_MEASURING = 0x08
STATUS_IM_UPDATE = 0x01
MODE_SLEEP, MODE_FORCED, MODE_NORMAL = 0b00, 0b01, 0b11

KNOWN_CHIP_IDS = {
    0x55: "BMP180/BMP085",
    0x56: "BMP280 (sample)",
    0x57: "BMP280 (sample)",
    0x58: "BMP280 (no humidity sensor)",
    0x60: "BME280",
    0x61: "BME680/BME688",
}
OVERSAMPLING_CODES = {1: 0b001, 2: 0b010, 4: 0b011, 8: 0b100, 16: 0b101}
FILTER_CODES = {0: 0b000, 2: 0b001, 4: 0b010, 8: 0b011, 16: 0b100}
STANDBY_CODES = {
    0.5: 0b000, 62.5: 0b001, 125.0: 0b010, 250.0: 0b011,
    500.0: 0b100, 1000.0: 0b101, 10.0: 0b110, 20.0: 0b111,
}  # fmt: skip

RESET_S = 0.002  # start-up time after soft reset (NVM copy)
POLL_S = 0.001
POLL_ATTEMPTS = 20


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _u16(data: bytes, offset: int) -> int:
    return data[offset] | data[offset + 1] << 8


def _s16(data: bytes, offset: int) -> int:
    return _signed(_u16(data, offset), 16)


def _div_trunc(numerator: int, denominator: int) -> int:
    """C integer division (rounds toward zero); Python's // rounds toward -inf."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


@dataclass(frozen=True, slots=True)
class Bme280Calibration:
    """The trimming parameters ("dig_*") programmed into each chip's NVM."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int

    @classmethod
    def from_registers(cls, tp: bytes, h: bytes) -> Bme280Calibration:
        """Decode 0x88..0xA1 (26 bytes) and 0xE1..0xE7 (7 bytes) per datasheet table 16.

        dig_H4 and dig_H5 are 12-bit values sharing register 0xE5: H4 = 0xE4[7:0] << 4 |
        0xE5[3:0], H5 = 0xE6[7:0] << 4 | 0xE5[7:4], the MSB registers signed.
        """
        if len(tp) != CALIB_TP_LENGTH or len(h) != CALIB_H_LENGTH:
            raise ValueError("need 26 bytes from 0x88 and 7 bytes from 0xE1")
        return cls(
            t1=_u16(tp, 0), t2=_s16(tp, 2), t3=_s16(tp, 4),
            p1=_u16(tp, 6), p2=_s16(tp, 8), p3=_s16(tp, 10), p4=_s16(tp, 12),
            p5=_s16(tp, 14), p6=_s16(tp, 16), p7=_s16(tp, 18), p8=_s16(tp, 20),
            p9=_s16(tp, 22),
            h1=tp[25],
            h2=_s16(h, 0),
            h3=h[2],
            h4=_signed(h[3], 8) * 16 | (h[4] & 0x0F),
            h5=_signed(h[5], 8) * 16 | (h[4] >> 4),
            h6=_signed(h[6], 8),
        )  # fmt: skip


def compensate_temperature(adc_t: int, cal: Bme280Calibration) -> tuple[int, int]:
    """BME280_compensate_T_int32: (temperature in 0.01 °C, t_fine)."""
    var1 = (((adc_t >> 3) - (cal.t1 << 1)) * cal.t2) >> 11
    var2 = (((((adc_t >> 4) - cal.t1) * ((adc_t >> 4) - cal.t1)) >> 12) * cal.t3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure(adc_p: int, t_fine: int, cal: Bme280Calibration) -> int:
    """BME280_compensate_P_int64: pressure in Pa as Q24.8 (divide by 256)."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal.p6
    var2 = var2 + ((var1 * cal.p5) << 17)
    var2 = var2 + (cal.p4 << 35)
    var1 = ((var1 * var1 * cal.p3) >> 8) + ((var1 * cal.p2) << 12)
    var1 = (((1 << 47) + var1) * cal.p1) >> 33
    if var1 == 0:
        return 0  # the datasheet's guard against division by zero
    p = 1048576 - adc_p
    p = _div_trunc(((p << 31) - var2) * 3125, var1)
    var1 = (cal.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.p7 << 4)


def compensate_humidity(adc_h: int, t_fine: int, cal: Bme280Calibration) -> int:
    """bme280_compensate_H_int32: relative humidity in % as Q22.10 (divide by 1024)."""
    v = t_fine - 76800
    scaled = (((adc_h << 14) - (cal.h4 << 20) - (cal.h5 * v)) + 16384) >> 15
    gain = (((((v * cal.h6) >> 10) * (((v * cal.h3) >> 11) + 32768)) >> 10) + 2097152) * cal.h2
    v = scaled * ((gain + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal.h1) >> 4)
    v = min(max(v, 0), 419430400)
    return v >> 12


def max_measurement_seconds(oversampling: int) -> float:
    """Datasheet appendix B maximum measurement time with T, P and H all at `oversampling`."""
    return (1.25 + 2.3 * oversampling + 2 * (2.3 * oversampling + 0.575)) / 1000.0


class Bme280(I2CDriver):
    """BME280 in forced mode (default) or normal mode."""

    model: ClassVar[str] = "BME280"
    manufacturer: ClassVar[str] = "Bosch Sensortec"
    addresses: ClassVar[tuple[int, ...]] = (0x76, 0x77)
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "pressure", "humidity")

    def __init__(
        self,
        bus: I2CBus,
        address: int,
        *,
        oversampling: int = 1,
        iir_filter: int = 0,
        normal_mode: bool = False,
        standby_ms: float = 1000.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(bus, address, sleep=sleep)
        if oversampling not in OVERSAMPLING_CODES:
            raise ValueError(f"oversampling must be one of {sorted(OVERSAMPLING_CODES)}")
        if iir_filter not in FILTER_CODES:
            raise ValueError(f"iir_filter must be one of {sorted(FILTER_CODES)} (0 = off)")
        if standby_ms not in STANDBY_CODES:
            raise ValueError(f"standby_ms must be one of {sorted(STANDBY_CODES)}")
        self.oversampling = oversampling
        self.iir_filter = iir_filter
        self.normal_mode = normal_mode
        self.standby_ms = standby_ms
        self.calibration: Bme280Calibration | None = None

    def _read(self, register: int, length: int) -> bytes:
        with bus_errors(self.address):
            return bytes(self.bus.read_i2c_block_data(self.address, register, length))

    def _write(self, register: int, value: int) -> None:
        with bus_errors(self.address):
            self.bus.write_byte_data(self.address, register, value)

    def _wait_status_clear(self, mask: int, what: str) -> None:
        for _ in range(POLL_ATTEMPTS):
            if not self._read(REG_STATUS, 1)[0] & mask:
                return
            self._sleep(POLL_S)
        raise NotReadyError(f"BME280 at 0x{self.address:02X} is still {what}; try again later")

    def identify(self) -> None:
        """Chip id 0x60 is a BME280; a BMP280 (0x58) has no humidity sensor."""
        (chip_id,) = self._read(REG_CHIP_ID, 1)
        if chip_id != CHIP_ID_BME280:
            found = KNOWN_CHIP_IDS.get(chip_id, "an unknown chip")
            raise ChipMismatchError(
                f"expected a BME280 (chip id 0x60) at 0x{self.address:02X}, found "
                f"chip id 0x{chip_id:02X}: {found}"
            )

    def probe(self) -> None:
        """Read-only identification (chip id register) for bus scans."""
        self.identify()

    def initialize(self) -> None:
        """Soft reset, read the trimming parameters, then configure the measurement."""
        self._write(REG_RESET, RESET_WORD)
        self._sleep(RESET_S)
        self._wait_status_clear(STATUS_IM_UPDATE, "copying its calibration after reset")
        self.calibration = Bme280Calibration.from_registers(
            self._read(REG_CALIB_TP, CALIB_TP_LENGTH), self._read(REG_CALIB_H, CALIB_H_LENGTH)
        )
        osrs = OVERSAMPLING_CODES[self.oversampling]
        # config is written in sleep mode (writes in normal mode may be ignored), and
        # ctrl_hum takes effect only with the following ctrl_meas write.
        config = STANDBY_CODES[self.standby_ms] << 5 | FILTER_CODES[self.iir_filter] << 2
        self._write(REG_CONFIG, config)
        self._write(REG_CTRL_HUM, osrs)
        if self.normal_mode:
            self._write(REG_CTRL_MEAS, osrs << 5 | osrs << 2 | MODE_NORMAL)
            self._sleep(max_measurement_seconds(self.oversampling))

    def read(self) -> dict[str, float]:
        if self.calibration is None:
            raise RuntimeError("Bme280.initialize() must run before read()")
        if not self.normal_mode:
            osrs = OVERSAMPLING_CODES[self.oversampling]
            self._write(REG_CTRL_MEAS, osrs << 5 | osrs << 2 | MODE_FORCED)
            self._sleep(max_measurement_seconds(self.oversampling))
            self._wait_status_clear(STATUS_MEASURING, "measuring")
        data = self._read(REG_DATA, DATA_LENGTH)
        adc_p = data[0] << 12 | data[1] << 4 | data[2] >> 4
        adc_t = data[3] << 12 | data[4] << 4 | data[5] >> 4
        adc_h = data[6] << 8 | data[7]
        centi_celsius, t_fine = compensate_temperature(adc_t, self.calibration)
        return {
            "temperature": centi_celsius / 100.0,
            "pressure": compensate_pressure(adc_p, t_fine, self.calibration) / 25600.0,
            "humidity": compensate_humidity(adc_h, t_fine, self.calibration) / 1024.0,
        }
