"""The I2C chips Hearth knows, and a harmless way to find them on a bus.

Scanning only ever reads identification: the BME280 chip id register, the SHT3x status
register, the SHT4x and SCD4x serial numbers (or, for an SCD4x already measuring, its
data-ready status), the INA219 configuration register. Two chips have no identification:

- BH1750 (0x23/0x5C): no ID at all. A scan reports "bh1750" for any device at those
  addresses that answers a two-byte read; another chip there (an AM2320 uses 0x5C) would
  be misreported. The driver's identify() then powers it on and measures.
- INA219 (0x40..0x4F): no ID register. A scan reports "ina219" when register 0x00 reads
  the configuration reset value 0x399F (the driver never changes it); the driver's
  identify() resets the chip and checks 0x399F again. It is never reset during a scan.

So for those two the user must confirm the chip; for the others the answer is certain
up to a CRC collision (1 in 256 for the one-word SHT3x status, far less for the rest).
"""

from __future__ import annotations

import time

from smbus2 import i2c_msg

from .base import I2CBus, I2CDriver, Sleep
from .bh1750 import Bh1750
from .bme280 import Bme280
from .errors import ChecksumError, ChipMismatchError, NoAckError
from .i2c_transfer import bus_errors
from .ina219 import Ina219
from .scd4x import Scd4x
from .sht3x import Sht3x
from .sht4x import Sht4x

# Order matters where addresses are shared: at 0x44/0x45 the SHT3x status read comes
# first (an SHT4x NACKs it), then the SHT4x serial read (an SHT3x NACKs that), and the
# INA219 (0x40..0x4F overlaps both) last: its heuristic is the weakest.
I2C_DRIVERS: dict[str, type[I2CDriver]] = {
    "bme280": Bme280,
    "sht3x": Sht3x,
    "sht4x": Sht4x,
    "bh1750": Bh1750,
    "scd4x": Scd4x,
    "ina219": Ina219,
}

_NOT_THIS_CHIP = (NoAckError, ChipMismatchError, ChecksumError)


def candidates_for_address(address: int) -> list[str]:
    """Keys of the chips that can sit at `address`, in probing order."""
    return [key for key, driver in I2C_DRIVERS.items() if address in driver.addresses]


def known_addresses() -> list[int]:
    """Every address some known chip can use, ascending."""
    return sorted({address for driver in I2C_DRIVERS.values() for address in driver.addresses})


def _probe(key: str, bus: I2CBus, address: int, sleep: Sleep) -> None:
    I2C_DRIVERS[key](bus, address, sleep=sleep).probe()


def identify_at(bus: I2CBus, address: int, *, sleep: Sleep = time.sleep) -> str | None:
    """Key of the first candidate chip whose read-only probe succeeds at `address`, or None.

    Uses each driver's probe() rather than identify(), so it is as harmless as a scan;
    the integration runs identify() and initialize() on the driver it then creates.
    `sleep` waits out the chips' execution times (pass the emulators' clock in simulation).
    """
    for key in candidates_for_address(address):
        try:
            _probe(key, bus, address, sleep)
        except _NOT_THIS_CHIP:
            continue
        return key
    return None


def _acknowledges(bus: I2CBus, address: int) -> bool:
    # A one-byte read, like `i2cdetect -r`. Sensirion chips NACK reads with no command
    # pending, but those were found by their probes already.
    try:
        with bus_errors(address):
            bus.i2c_rdwr(i2c_msg.read(address, 1))
    except NoAckError:
        return False
    return True


def scan(bus: I2CBus, *, sleep: Sleep = time.sleep) -> dict[int, str | None]:
    """Probe every known address: chip key where identified, None where an unknown
    device acknowledges, absent where nothing answers."""
    found: dict[int, str | None] = {}
    for address in known_addresses():
        key = identify_at(bus, address, sleep=sleep)
        if key is not None or _acknowledges(bus, address):
            found[address] = key
    return found
