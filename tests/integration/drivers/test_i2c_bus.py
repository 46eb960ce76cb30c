"""The emulated bus behaves like smbus2.SMBus on Linux i2c-dev; Sensirion CRC; drift."""

from __future__ import annotations

import errno
import itertools
import statistics

import pytest
from smbus2 import i2c_msg

from custom_components.hearth.drivers.crc import pack_words, sensirion_crc8, unpack_words
from custom_components.hearth.drivers.errors import ChecksumError, DriverError, NoAckError
from custom_components.hearth.drivers.i2c_transfer import bus_errors
from custom_components.hearth.emulators.environment import (
    INDOOR_WANDER,
    Ambient,
    Drift,
)
from custom_components.hearth.emulators.i2c_bus import (
    EmulatedI2CBus,
    EmulatedI2CDevice,
    I2CNack,
    VirtualClock,
)


class Memory(EmulatedI2CDevice):
    """A 256-byte register file with an auto-incrementing pointer (24C02-like)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells = bytearray(range(256))
        self.pointer = 0
        self.transactions: list[tuple[str, bytes | int]] = []

    def write(self, data: bytes) -> None:
        self.transactions.append(("w", data))
        if data:
            self.pointer = data[0]
        for value in data[1:]:
            self.cells[self.pointer] = value
            self.pointer = (self.pointer + 1) & 0xFF

    def read(self, length: int) -> bytes:
        self.transactions.append(("r", length))
        out = bytes(self.cells[(self.pointer + i) & 0xFF] for i in range(length))
        self.pointer = (self.pointer + length) & 0xFF
        return out


class Refuser(EmulatedI2CDevice):
    """Acknowledges its address but NACKs every byte."""

    def write(self, data: bytes) -> None:
        raise I2CNack


def test_sensirion_crc_datasheet_example() -> None:
    # SHT3x datasheet, table "I2C CRC properties": CRC(0xBEEF) = 0x92.
    assert sensirion_crc8(bytes([0xBE, 0xEF])) == 0x92
    assert pack_words([0xBEEF]) == bytes([0xBE, 0xEF, 0x92])
    assert unpack_words(bytes([0xBE, 0xEF, 0x92])) == [0xBEEF]


def test_crc_mismatch_is_a_checksum_error() -> None:
    with pytest.raises(ChecksumError, match="word 1"):
        unpack_words(bytes([0xBE, 0xEF, 0x92, 0xBE, 0xEF, 0x93]))
    with pytest.raises(ValueError, match="whole number"):
        unpack_words(bytes([0xBE, 0xEF]))


def test_missing_device_is_errno_121_like_i2c_dev() -> None:
    bus = EmulatedI2CBus()
    with pytest.raises(OSError) as raised:
        bus.read_byte_data(0x50, 0)
    assert raised.value.errno == errno.EREMOTEIO == 121
    assert str(raised.value) == "[Errno 121] Remote I/O error"


def test_oserror_maps_to_driver_errors() -> None:
    with pytest.raises(NoAckError, match="0x50"), bus_errors(0x50):
        EmulatedI2CBus().write_byte(0x50, 1)
    with pytest.raises(NoAckError), bus_errors(0x50):
        raise OSError(errno.ENXIO, "No such device or address")
    with pytest.raises(DriverError, match="Connection timed out") as raised, bus_errors(0x50):
        raise OSError(errno.ETIMEDOUT, "Connection timed out")
    assert not isinstance(raised.value, NoAckError)


def test_smbus_calls_become_transactions() -> None:
    bus = EmulatedI2CBus()
    memory = bus.attach(0x50, Memory())
    bus.write_i2c_block_data(0x50, 0x10, [0xAA, 0xBB, 0xCC])
    assert bus.read_i2c_block_data(0x50, 0x10, 3) == [0xAA, 0xBB, 0xCC]
    bus.write_byte_data(0x50, 0x20, 0x42)
    assert bus.read_byte_data(0x50, 0x20) == 0x42
    assert memory.transactions == [
        ("w", bytes([0x10, 0xAA, 0xBB, 0xCC])),
        ("w", bytes([0x10])),
        ("r", 3),
        ("w", bytes([0x20, 0x42])),
        ("w", bytes([0x20])),
        ("r", 1),
    ]
    with pytest.raises(ValueError, match="32"):
        bus.read_i2c_block_data(0x50, 0, 33)


def test_i2c_rdwr_fills_real_smbus2_messages() -> None:
    bus = EmulatedI2CBus()
    bus.attach(0x50, Memory())
    write, read = i2c_msg.write(0x50, [0x40]), i2c_msg.read(0x50, 4)
    bus.i2c_rdwr(write, read)
    assert list(read) == [0x40, 0x41, 0x42, 0x43]
    assert bytes(read) == bytes([0x40, 0x41, 0x42, 0x43])


def test_nack_inside_a_transfer_fails_it() -> None:
    bus = EmulatedI2CBus()
    bus.attach(0x51, Refuser())
    with pytest.raises(OSError) as raised:
        bus.write_byte(0x51, 0x00)
    assert raised.value.errno == errno.EREMOTEIO


def test_fault_injection_nack_and_corruption() -> None:
    bus = EmulatedI2CBus()
    bus.attach(0x50, Memory())
    bus.nack_next_transfers(2)
    for _ in range(2):
        with pytest.raises(OSError):
            bus.read_byte_data(0x50, 0)
    assert bus.read_byte_data(0x50, 7) == 7
    bus.corrupt_next_reads(1)
    # Bytes 2 and 5 are where Sensirion frames carry their CRC.
    assert bus.read_i2c_block_data(0x50, 0, 6) == [0, 1, 2 ^ 1, 3, 4, 5 ^ 1]
    assert bus.read_i2c_block_data(0x50, 0, 6) == [0, 1, 2, 3, 4, 5]


def test_close_and_context_manager() -> None:
    with EmulatedI2CBus() as bus:
        bus.attach(0x50, Memory())
        assert bus.read_byte_data(0x50, 3) == 3
    with pytest.raises(OSError) as raised:
        bus.read_byte_data(0x50, 3)
    assert raised.value.errno == errno.EBADF


def test_attach_checks_addresses() -> None:
    bus = EmulatedI2CBus()
    bus.attach(0x50, Memory())
    with pytest.raises(ValueError, match="already"):
        bus.attach(0x50, Memory())
    with pytest.raises(ValueError, match="7-bit"):
        bus.attach(0x80, Memory())
    bus.detach(0x50)
    with pytest.raises(OSError):
        bus.read_byte_data(0x50, 0)


def test_virtual_clock_is_shared_with_devices() -> None:
    clock = VirtualClock(10.0)
    bus = EmulatedI2CBus(clock=clock.now)
    memory = bus.attach(0x50, Memory())
    clock.sleep(0.25)
    assert memory.clock() == 10.25


def test_drift_is_seeded_bounded_and_slow() -> None:
    first, second, other = Ambient(), Ambient(), Ambient()
    seeds = ((first, "household-1"), (second, "household-1"), (other, "household-2"))
    drifts = [Drift(state, INDOOR_WANDER, seed) for state, seed in seeds]
    assert first == second != other
    temperatures = []
    for _ in range(5000):
        for drift in drifts:
            drift.advance(60.0)
        assert first == second
        temperatures.append(first.temperature)
        for name, wander in INDOOR_WANDER.items():
            assert wander.low <= getattr(first, name) <= wander.high
    # A minute moves the temperature by hundredths of a degree, not degrees...
    steps = [abs(b - a) for a, b in itertools.pairwise(temperatures)]
    assert max(steps) < 0.8
    # ...while over ~3 days it wanders around the household's own mean.
    mean = drifts[0].means["temperature"]
    assert abs(statistics.fmean(temperatures) - mean) < 1.0
    assert 0.3 < statistics.stdev(temperatures) < 3.0
