"""MH-Z19B driver: datasheet byte strings, and an emulated sensor on a real pty."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

import pytest

from custom_components.hearth.drivers import mhz19
from custom_components.hearth.drivers.base import CHECKSUM_RETRIES
from custom_components.hearth.drivers.errors import ChecksumError, FrameTimeoutError
from custom_components.hearth.drivers.mhz19 import MHZ19B
from custom_components.hearth.drivers.serial_catalog import open_serial_driver
from custom_components.hearth.emulators.mhz19 import MHZ19BEmulator

READ_CO2 = bytes.fromhex("ff 01 86 00 00 00 00 00 79")


@pytest.fixture
async def device() -> AsyncIterator[MHZ19BEmulator]:
    emulator = MHZ19BEmulator(co2=812.0, offset=25.0)
    async with emulator:
        yield emulator


@pytest.fixture
async def driver(device: MHZ19BEmulator) -> AsyncIterator[MHZ19B]:
    opened = await open_serial_driver(MHZ19B, device.path)
    yield opened
    await opened.close()


def test_commands_match_the_datasheet() -> None:
    assert mhz19.READ_CO2 == READ_CO2
    assert mhz19.encode_command(0x87) == bytes.fromhex("ff 01 87 00 00 00 00 00 78")
    assert mhz19.encode_command(0x79, b"\xa0") == bytes.fromhex("ff 01 79 a0 00 00 00 00 e6")
    assert mhz19.encode_command(0x79) == bytes.fromhex("ff 01 79 00 00 00 00 00 86")
    # Span calibration to 2000 ppm, the datasheet's other worked checksum.
    assert mhz19.encode_command(0x88, b"\x07\xd0") == bytes.fromhex("ff 01 88 07 d0 00 00 00 a0")


def test_decodes_a_captured_reply() -> None:
    """Reply from a real MH-Z19B (PyPMS docs): 0x028A = 650 ppm."""
    reply = bytes.fromhex("ff 86 02 8a 44 00 00 00 aa")
    assert mhz19.FRAME_FORMAT.valid(reply)
    assert mhz19.decode_co2(reply) == {"co2": 650.0}


async def test_read_sends_the_datasheet_command(device: MHZ19BEmulator, driver: MHZ19B) -> None:
    assert await driver.measure(1.0) == {"co2": 837.0}
    assert bytes(device.received) == READ_CO2


async def test_bad_reply_is_retried(device: MHZ19BEmulator, driver: MHZ19B) -> None:
    device.corrupt_next()
    assert await driver.measure(1.0) == {"co2": 837.0}
    assert driver.checksum_errors == 1
    assert bytes(device.received) == READ_CO2 * 2


async def test_persistent_bad_replies_raise_checksum_error(
    device: MHZ19BEmulator, driver: MHZ19B
) -> None:
    device.corrupt_next(CHECKSUM_RETRIES)
    with pytest.raises(ChecksumError):
        await driver.measure(1.0)
    assert bytes(device.received) == READ_CO2 * CHECKSUM_RETRIES
    # The line is fine again: the next reading succeeds.
    assert await driver.measure(1.0) == {"co2": 837.0}


async def test_silent_sensor_times_out(device: MHZ19BEmulator, driver: MHZ19B) -> None:
    device.responding = False
    with pytest.raises(FrameTimeoutError):
        await driver.measure(0.1)


async def test_zero_calibration_and_abc(device: MHZ19BEmulator, driver: MHZ19B) -> None:
    await driver.set_abc(False)
    await driver.zero_calibrate()
    # The sensor sends no reply to either command; the next read shows the effect.
    assert await driver.measure(1.0) == {"co2": 400.0}
    assert not device.abc_enabled
    await driver.set_abc(True)
    await driver.measure(1.0)
    assert device.abc_enabled


async def test_only_fresh_air_calibration_is_supported(
    device: MHZ19BEmulator, driver: MHZ19B
) -> None:
    with pytest.raises(ValueError, match="400 ppm"):
        await driver.calibrate(450.0)
    assert device.received == b""
    await driver.calibrate(400.0)
    assert await driver.measure(1.0) == {"co2": 400.0}


async def test_unplug_and_replug(device: MHZ19BEmulator, driver: MHZ19B) -> None:
    await device.unplug()
    with pytest.raises(OSError) as caught:
        await driver.measure(1.0)
    assert caught.value.errno == errno.EIO
    await driver.close()

    replugged = await open_serial_driver(MHZ19B, await device.start())
    try:
        assert await replugged.measure(1.0) == {"co2": 837.0}
    finally:
        await replugged.close()
