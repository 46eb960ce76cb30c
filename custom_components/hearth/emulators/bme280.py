"""Register-level Bosch BME280 emulator.

Holds the trimming registers of a chip and produces the raw ADC words a real one would
for the Ambient it sits in: each raw value is found by inverting the datasheet's
double-precision compensation formulas (BME280_compensate_*_double) numerically, an
implementation independent of the driver's integer formulas. Emulated behaviour:
soft reset with the NVM-copy flag, ctrl_hum latched by the next ctrl_meas write, forced
mode (one conversion, then sleep) and normal mode (conversions every t_measure +
t_standby), the measuring flag, config writes ignored in normal mode, the x1..x16
oversampling resolution (16..20 bit) and the IIR filter on temperature and pressure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..drivers.bme280 import Bme280Calibration
from .environment import Ambient
from .i2c_bus import EmulatedI2CDevice

# dig_T*/dig_P* from the BMP280 datasheet's worked compensation example (the BME280 shares
# them); Bosch publishes no humidity example, so dig_H* are typical of production parts.
REFERENCE_CALIBRATION = Bme280Calibration(
    t1=27504, t2=26435, t3=-1000,
    p1=36477, p2=-10685, p3=3024, p4=2855, p5=140, p6=-7, p7=15500, p8=-14600, p9=6000,
    h1=75, h2=362, h3=0, h4=313, h5=50, h6=30,
)  # fmt: skip

CHIP_ID_BME280 = 0x60
RESET_WORD = 0xB6
NVM_COPY_S = 0.002
ADC_MAX = (1 << 20) - 1
HUMIDITY_ADC_MAX = 0xFFFF
SKIPPED_20 = 0x80000
SKIPPED_16 = 0x8000
OVERSAMPLING = (0, 1, 2, 4, 8, 16, 16, 16)  # osrs code -> samples (0 = skipped)
FILTER = (1, 2, 4, 8, 16, 16, 16, 16)  # filter code -> coefficient (1 = off)
STANDBY_MS = (0.5, 62.5, 125.0, 250.0, 500.0, 1000.0, 10.0, 20.0)
FILTER_STEPS_CAP = 64  # a longer gap has converged anyway
MODE_SLEEP, MODE_FORCED, MODE_NORMAL = 0b00, 0b01, 0b11


def _u16_bytes(value: int) -> list[int]:
    value &= 0xFFFF
    return [value & 0xFF, value >> 8]


def calibration_registers(cal: Bme280Calibration) -> dict[int, int]:
    """Register image of the trimming values (datasheet table 16, incl. the H4/H5 nibbles)."""
    tp: list[int] = []
    for word in (cal.t1, cal.t2, cal.t3, cal.p1, cal.p2, cal.p3, cal.p4, cal.p5, cal.p6,
                 cal.p7, cal.p8, cal.p9):  # fmt: skip
        tp += _u16_bytes(word)
    tp += [0x00, cal.h1]
    h = [*_u16_bytes(cal.h2), cal.h3, (cal.h4 >> 4) & 0xFF,
         (cal.h5 & 0x0F) << 4 | (cal.h4 & 0x0F), (cal.h5 >> 4) & 0xFF, cal.h6 & 0xFF]  # fmt: skip
    image = {0x88 + i: b for i, b in enumerate(tp)}
    image.update({0xE1 + i: b for i, b in enumerate(h)})
    return image


def t_fine_double(adc_t: float, cal: Bme280Calibration) -> float:
    """var1 + var2 of BME280_compensate_T_double; temperature is this / 5120."""
    var1 = (adc_t / 16384.0 - cal.t1 / 1024.0) * cal.t2
    var2 = (adc_t / 131072.0 - cal.t1 / 8192.0) ** 2 * cal.t3
    return var1 + var2


def pressure_double(adc_p: float, t_fine: int, cal: Bme280Calibration) -> float:
    """BME280_compensate_P_double, in Pa."""
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * cal.p6 / 32768.0
    var2 = var2 + var1 * cal.p5 * 2.0
    var2 = var2 / 4.0 + cal.p4 * 65536.0
    var1 = (cal.p3 * var1 * var1 / 524288.0 + cal.p2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * cal.p1
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = cal.p9 * p * p / 2147483648.0
    var2 = p * cal.p8 / 32768.0
    return p + (var1 + var2 + cal.p7) / 16.0


def humidity_double(adc_h: float, t_fine: int, cal: Bme280Calibration) -> float:
    """bme280_compensate_H_double before its 0..100 clamp, in %RH."""
    var_h = t_fine - 76800.0
    var_h = (adc_h - (cal.h4 * 64.0 + cal.h5 / 16384.0 * var_h)) * (
        cal.h2 / 65536.0 * (1.0 + cal.h6 / 67108864.0 * var_h * (1.0 + cal.h3 / 67108864.0 * var_h))
    )
    return var_h * (1.0 - cal.h1 * var_h / 524288.0)


def invert(function: Callable[[int], float], target: float, high: int) -> int:
    """The integer x in 0..high whose monotonic function(x) is nearest `target` (an ADC
    saturates at its ends)."""
    rising = function(high) > function(0)
    low, top = 0, high
    while low < top:  # first x with function(x) past the target
        middle = (low + top) // 2
        value = function(middle)
        if (value < target) if rising else (value > target):
            low = middle + 1
        else:
            top = middle
    if low > 0 and abs(function(low - 1) - target) <= abs(function(low) - target):
        return low - 1
    return low


def measurement_seconds(osrs_t: int, osrs_p: int, osrs_h: int) -> float:
    """Datasheet appendix B typical measurement time for the given sample counts."""
    ms = 1.0 + 2.0 * osrs_t
    ms += 2.0 * osrs_p + 0.5 if osrs_p else 0.0
    ms += 2.0 * osrs_h + 0.5 if osrs_h else 0.0
    return ms / 1000.0


class Bme280Emulator(EmulatedI2CDevice):
    """A BME280 (or, with another chip_id, a look-alike such as a BMP280 0x58)."""

    def __init__(
        self,
        state: Ambient | None = None,
        *,
        chip_id: int = CHIP_ID_BME280,
        calibration: Bme280Calibration = REFERENCE_CALIBRATION,
    ) -> None:
        super().__init__()
        self.state = state if state is not None else Ambient()
        self.chip_id = chip_id
        self.calibration = calibration
        self._nvm = calibration_registers(calibration)
        self._im_update_until = float("-inf")
        self._power_on_reset()

    def _power_on_reset(self) -> None:
        self.registers = bytearray(256)
        for register, value in self._nvm.items():
            self.registers[register] = value
        self.registers[0xD0] = self.chip_id
        self.registers[0xF7:0xFF] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
        self.pointer = 0
        self._osrs_h_latched = 0
        self._forced_done_at: float | None = None
        self._normal_start = 0.0
        self._normal_applied = 0
        self._filtered: dict[str, float] = {}

    # Bus side ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        # I2C writes are (register, value) pairs; a lone trailing byte sets the pointer.
        self._update()
        for index in range(0, len(data) - 1, 2):
            self._write_register(data[index], data[index + 1])
        if len(data) % 2:
            self.pointer = data[-1]

    def read(self, length: int) -> bytes:
        self._update()
        out = bytes(self._read_register((self.pointer + i) & 0xFF) for i in range(length))
        self.pointer = (self.pointer + length) & 0xFF
        return out

    def _read_register(self, register: int) -> int:
        if register == 0xF3:
            now = self.clock()
            measuring = self._forced_done_at is not None or (
                self._mode == MODE_NORMAL and self._normal_phase(now) < self._t_measure
            )
            return (0x08 if measuring else 0) | (0x01 if now < self._im_update_until else 0)
        if register == 0xE0:
            return 0x00
        return self.registers[register]

    def _write_register(self, register: int, value: int) -> None:
        now = self.clock()
        if register == 0xE0:
            if value == RESET_WORD:
                self._power_on_reset()
                self._im_update_until = now + NVM_COPY_S
        elif register == 0xF2:
            self.registers[0xF2] = value & 0x07
        elif register == 0xF5:
            if self._mode != MODE_NORMAL:
                self.registers[0xF5] = value & 0xFD
                self._filtered.clear()  # a filter change resets the filter memory
        elif register == 0xF4:
            self.registers[0xF4] = value
            self._osrs_h_latched = self.registers[0xF2] & 0x07
            mode = value & 0x03
            self._forced_done_at = None
            if mode in (0b01, 0b10):
                self._forced_done_at = now + self._t_measure
            elif mode == MODE_NORMAL:
                self._normal_start, self._normal_applied = now, 0
        # Everything else (id, calibration, status, data) is read-only.

    # Conversions ------------------------------------------------------------------

    @property
    def _mode(self) -> int:
        mode = self.registers[0xF4] & 0x03
        return MODE_FORCED if mode == 0b10 else mode

    @property
    def _samples(self) -> tuple[int, int, int]:
        ctrl = self.registers[0xF4]
        return (
            OVERSAMPLING[ctrl >> 5],
            OVERSAMPLING[(ctrl >> 2) & 7],
            OVERSAMPLING[self._osrs_h_latched],
        )

    @property
    def _t_measure(self) -> float:
        return measurement_seconds(*self._samples)

    @property
    def _period(self) -> float:
        return self._t_measure + STANDBY_MS[self.registers[0xF5] >> 5] / 1000.0

    def _normal_phase(self, now: float) -> float:
        return (now - self._normal_start) % self._period

    def _update(self) -> None:
        now = self.clock()
        if self._forced_done_at is not None and now >= self._forced_done_at:
            self._forced_done_at = None
            self.registers[0xF4] &= 0xFC  # back to sleep mode
            self._convert(1)
        elif self._mode == MODE_NORMAL and now >= self._normal_start + self._t_measure:
            completed = int((now - self._normal_start - self._t_measure) // self._period) + 1
            if completed > self._normal_applied:
                self._convert(min(completed - self._normal_applied, FILTER_STEPS_CAP))
                self._normal_applied = completed

    def _filter(self, name: str, raw: float, steps: int) -> float:
        coefficient = FILTER[(self.registers[0xF5] >> 2) & 0x07]
        previous = self._filtered.get(name)
        value = raw
        if previous is not None and coefficient > 1:
            value = previous
            for _ in range(steps):
                value = (value * (coefficient - 1) + raw) / coefficient
        self._filtered[name] = value
        return value

    def _quantised(self, name: str, raw: int, samples: int, steps: int) -> int:
        """20-bit output: the filter's, or the ADC's 16..20-bit resolution without it."""
        if (self.registers[0xF5] >> 2) & 0x07:
            return round(self._filter(name, raw, steps))
        step = 1 << (20 - (15 + int(math.log2(samples)) + 1))
        return min(ADC_MAX, round(raw / step) * step)

    def _convert(self, steps: int) -> None:
        cal, state = self.calibration, self.state
        samples_t, samples_p, samples_h = self._samples
        target_t_fine = state.temperature * 5120.0
        raw_t = invert(lambda x: t_fine_double(x, cal), target_t_fine, ADC_MAX)
        adc_t = self._quantised("t", raw_t, samples_t, steps) if samples_t else SKIPPED_20
        t_fine = int(t_fine_double(adc_t if samples_t else raw_t, cal))
        adc_p = SKIPPED_20
        if samples_p:
            raw_p = invert(
                lambda x: pressure_double(x, t_fine, cal), state.pressure * 100.0, ADC_MAX
            )
            adc_p = self._quantised("p", raw_p, samples_p, steps)
        adc_h = SKIPPED_16
        if samples_h:
            adc_h = invert(
                lambda x: humidity_double(x, t_fine, cal), state.humidity, HUMIDITY_ADC_MAX
            )
        self.registers[0xF7:0xFF] = bytes(
            [adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4,
             adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4,
             adc_h >> 8, adc_h & 0xFF]
        )  # fmt: skip
