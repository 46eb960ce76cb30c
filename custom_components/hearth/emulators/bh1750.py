"""Opcode-level ROHM BH1750FVI emulator.

Power down/on, reset (accepted only when powered), continuous and one-time measurement
in H-, H2- and L-resolution modes, and the two-part measurement-time (MTreg) change. A
measurement completes after the datasheet's typical time (scaled by MTreg); until then a
read returns the previous result, as on the chip. One-time modes power down afterwards.
Undefined opcodes are NACKed.
"""

from __future__ import annotations

from .environment import Ambient
from .i2c_bus import EmulatedI2CDevice, I2CNack

OP_POWER_DOWN = 0x00
OP_POWER_ON = 0x01
OP_RESET = 0x07
MTREG_HIGH = 0x40  # 01000_MT[7:5]
MTREG_LOW = 0x60  # 011_MT[4:0]
MTREG_DEFAULT = 69
COUNTS_PER_LUX = 1.2  # typical sensitivity, H-resolution at MTreg 69

# opcode -> (one-time, resolution divisor, L-resolution, typical seconds at MTreg 69)
MODES = {
    0x10: (False, 1, False, 0.120),
    0x11: (False, 2, False, 0.120),
    0x13: (False, 1, True, 0.016),
    0x20: (True, 1, False, 0.120),
    0x21: (True, 2, False, 0.120),
    0x23: (True, 1, True, 0.016),
}
L_RESOLUTION_LUX = 4.0


class Bh1750Emulator(EmulatedI2CDevice):
    """A BH1750 measuring an Ambient's illuminance."""

    def __init__(self, state: Ambient | None = None) -> None:
        super().__init__()
        self.state = state if state is not None else Ambient()
        self.powered = False
        self.mtreg = MTREG_DEFAULT
        self.result = 0
        self._mode: int | None = None
        self._started = 0.0

    def _counts(self, mode: int) -> int:
        _, divisor, low_resolution, _ = MODES[mode]
        lux = max(0.0, self.state.illuminance)
        if low_resolution:
            lux = round(lux / L_RESOLUTION_LUX) * L_RESOLUTION_LUX
        return min(0xFFFF, round(lux * COUNTS_PER_LUX * divisor * self.mtreg / MTREG_DEFAULT))

    def _update(self) -> None:
        if self._mode is None:
            return
        one_time, _, _, seconds = MODES[self._mode]
        if self.clock() - self._started < seconds * self.mtreg / MTREG_DEFAULT:
            return
        self.result = self._counts(self._mode)
        if one_time:
            self._mode, self.powered = None, False
        else:
            self._started = self.clock()

    def write(self, data: bytes) -> None:
        self._update()
        for opcode in data:
            self._instruction(opcode)

    def _instruction(self, opcode: int) -> None:
        if opcode == OP_POWER_DOWN:
            self.powered, self._mode = False, None
        elif opcode == OP_POWER_ON:
            self.powered = True
        elif opcode == OP_RESET:
            if self.powered:
                self.result = 0
        elif opcode in MODES:
            self.powered, self._mode, self._started = True, opcode, self.clock()
        elif opcode & 0xF8 == MTREG_HIGH:
            self.mtreg = (opcode & 0x07) << 5 | (self.mtreg & 0x1F)
        elif opcode & 0xE0 == MTREG_LOW:
            self.mtreg = (self.mtreg & 0xE0) | (opcode & 0x1F)
        else:
            raise I2CNack

    def read(self, length: int) -> bytes:
        self._update()
        return self.result.to_bytes(2, "big")[:length].ljust(length, b"\xff")
