"""Senseair S8 over Modbus RTU: CRC vectors, and an emulated sensor on a real pty."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

import pytest

from custom_components.hearth.drivers import modbus
from custom_components.hearth.drivers.errors import FrameTimeoutError
from custom_components.hearth.drivers.senseair_s8 import MeterStatusError, SenseairS8
from custom_components.hearth.drivers.serial_catalog import open_serial_driver
from custom_components.hearth.emulators.senseair_s8 import SenseairS8Emulator

# Requests and their CRCs as printed in Senseair's application notes and S8 libraries.
DOCUMENTED_FRAMES = [
    "fe 04 00 03 00 01 d5 c5",  # read IR4 (CO2)
    "fe 04 00 00 00 01 25 c5",  # read IR1 (meter status)
    "fe 04 00 00 00 04 e5 c6",  # read IR1..IR4
    "fe 03 00 1f 00 01 a1 c3",  # read HR32 (ABC period)
    "fe 06 00 00 00 00 9d c5",  # clear HR1 (acknowledgements)
    "fe 04 02 01 90 ac d8",  # reply: CO2 = 0x0190 = 400 ppm
]


@pytest.fixture
async def device() -> AsyncIterator[SenseairS8Emulator]:
    emulator = SenseairS8Emulator(co2=612.0, offset=-20.0)
    async with emulator:
        yield emulator


@pytest.fixture
async def driver(device: SenseairS8Emulator) -> AsyncIterator[SenseairS8]:
    opened = await open_serial_driver(SenseairS8, device.path)
    yield opened
    await opened.close()


@pytest.mark.parametrize("frame", DOCUMENTED_FRAMES)
def test_crc_matches_documented_frames(frame: str) -> None:
    data = bytes.fromhex(frame)
    assert modbus.with_crc(data[:-2]) == data
    assert modbus.crc_ok(data)


def test_crc_catalogue_check_value() -> None:
    """CRC-16/MODBUS of ASCII 123456789 is 0x4B37 (CRC catalogue check value)."""
    assert modbus.crc16(b"123456789") == 0x4B37


def test_request_builders() -> None:
    assert modbus.read_request(0xFE, 0x04, 3, 1) == bytes.fromhex(DOCUMENTED_FRAMES[0])
    assert modbus.write_request(0xFE, 0, 0) == bytes.fromhex(DOCUMENTED_FRAMES[4])
    assert modbus.decode_registers(bytes.fromhex(DOCUMENTED_FRAMES[5])) == [400]


async def test_measure_reads_status_and_co2_in_one_request(
    device: SenseairS8Emulator, driver: SenseairS8
) -> None:
    assert await driver.measure(1.0) == {"co2": 592.0}
    assert bytes(device.received) == bytes.fromhex(DOCUMENTED_FRAMES[2])


async def test_meter_status_error_is_raised(device: SenseairS8Emulator, driver: SenseairS8) -> None:
    device.meter_status = 0x0022
    with pytest.raises(MeterStatusError, match="offset regulation error, out of range"):
        await driver.measure(1.0)


async def test_exception_replies_become_clear_errors(driver: SenseairS8) -> None:
    with pytest.raises(modbus.ModbusExceptionError, match="illegal function") as caught:
        await driver.read_registers(0x41, 0, 1)
    assert caught.value.code == 0x01
    with pytest.raises(modbus.ModbusExceptionError, match="illegal data address") as caught:
        await driver.read_registers(modbus.READ_HOLDING_REGISTERS, 100, 1)
    assert caught.value.code == 0x02


async def test_abc_period(device: SenseairS8Emulator, driver: SenseairS8) -> None:
    await driver.set_abc(False)
    assert device.holding[31] == 0
    assert await driver.abc_period_hours() == 0
    await driver.set_abc(True)
    assert await driver.abc_period_hours() == 180


async def test_background_calibration(device: SenseairS8Emulator, driver: SenseairS8) -> None:
    await driver.background_calibrate(settle_seconds=0.01)
    assert await driver.measure(1.0) == {"co2": 400.0}
    with pytest.raises(ValueError, match="400 ppm"):
        await driver.calibrate(1000.0)


async def test_bad_crc_reply_is_retried(device: SenseairS8Emulator, driver: SenseairS8) -> None:
    device.corrupt_next()
    assert await driver.measure(1.0) == {"co2": 592.0}
    assert driver.checksum_errors == 1


async def test_silent_sensor_times_out(device: SenseairS8Emulator, driver: SenseairS8) -> None:
    device.responding = False
    with pytest.raises(FrameTimeoutError):
        await driver.measure(0.1)


async def test_unplug_raises_oserror(device: SenseairS8Emulator, driver: SenseairS8) -> None:
    await device.unplug()
    with pytest.raises(OSError) as caught:
        await driver.measure(1.0)
    assert caught.value.errno == errno.EIO
