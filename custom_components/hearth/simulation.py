"""The "Simulated I2C bus (demo)": register-level emulators of every supported chip.

The chips are the same emulators the tests use, so the integration can be tried without
hardware. They sit in one drifting room (and one drifting DC load for the INA219); the
drift advances with the bus clock before each transfer, so values move slowly and
plausibly however often they are polled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from smbus2 import i2c_msg

from .emulators.bh1750 import Bh1750Emulator
from .emulators.bme280 import Bme280Emulator
from .emulators.environment import (
    INDOOR_WANDER,
    LOAD_WANDER,
    Ambient,
    Circuit,
    Drift,
)
from .emulators.i2c_bus import EmulatedI2CBus
from .emulators.ina219 import Ina219Emulator
from .emulators.scd4x import Scd4xEmulator
from .emulators.sht3x import Sht3xEmulator
from .emulators.sht4x import Sht4xEmulator

# One chip of each kind at an address its driver accepts; SHT3x and SHT4x both default
# to 0x44, so the SHT4x takes its alternative 0x45.
DEMO_ADDRESSES = {
    "bh1750": 0x23,
    "ina219": 0x40,
    "sht3x": 0x44,
    "sht4x": 0x45,
    "scd4x": 0x62,
    "bme280": 0x76,
}
DEMO_SHUNT_OHMS = 0.1
DEMO_SEED = "hearth-demo"


class SimulatedBus:
    """An EmulatedI2CBus populated with the demo chips, drifting with its clock.

    `bus` is what drivers talk to; `sleep` is how they wait (the clock's own sleep when
    a test supplies a virtual clock).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        seed: str = DEMO_SEED,
        drift: bool = True,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.ambient = Ambient()
        self.circuit = Circuit()
        self._drifts = (
            (Drift(self.ambient, INDOOR_WANDER, seed), Drift(self.circuit, LOAD_WANDER, seed))
            if drift
            else ()
        )
        self._drifted_to = clock()
        self._drift_lock = threading.Lock()
        self.emulated = EmulatedI2CBus(clock=clock)
        self.emulated.attach(DEMO_ADDRESSES["bh1750"], Bh1750Emulator(self.ambient))
        self.emulated.attach(
            DEMO_ADDRESSES["ina219"], Ina219Emulator(self.circuit, shunt_ohms=DEMO_SHUNT_OHMS)
        )
        self.emulated.attach(DEMO_ADDRESSES["sht3x"], Sht3xEmulator(self.ambient))
        self.emulated.attach(DEMO_ADDRESSES["sht4x"], Sht4xEmulator(self.ambient))
        self.emulated.attach(DEMO_ADDRESSES["scd4x"], Scd4xEmulator(self.ambient))
        self.emulated.attach(DEMO_ADDRESSES["bme280"], Bme280Emulator(self.ambient))
        self.bus = _DriftingBus(self)

    def advance(self) -> None:
        """Bring the room up to the clock's present."""
        with self._drift_lock:
            now = self.clock()
            for drift in self._drifts:
                drift.advance(now - self._drifted_to)
            self._drifted_to = now


class _DriftingBus:
    """The smbus2 subset the drivers use, advancing the drift before each transaction."""

    def __init__(self, simulated: SimulatedBus) -> None:
        self._simulated = simulated
        self._bus = simulated.emulated

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        self._simulated.advance()
        return self._bus.read_byte_data(i2c_addr, register)

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._simulated.advance()
        self._bus.write_byte_data(i2c_addr, register, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self._simulated.advance()
        return self._bus.read_i2c_block_data(i2c_addr, register, length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        self._simulated.advance()
        self._bus.write_i2c_block_data(i2c_addr, register, data)

    def write_byte(self, i2c_addr: int, value: int) -> None:
        self._simulated.advance()
        self._bus.write_byte(i2c_addr, value)

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None:
        self._simulated.advance()
        self._bus.i2c_rdwr(*i2c_msgs)
