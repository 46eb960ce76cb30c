"""SDS011 driver against captured frames and an emulated sensor on a real pty."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable

import pytest

from custom_components.hearth.drivers import sds011
from custom_components.hearth.drivers.errors import FrameTimeoutError
from custom_components.hearth.drivers.sds011 import SDS011
from custom_components.hearth.drivers.serial_catalog import open_serial_driver
from custom_components.hearth.emulators.sds011 import SDS011Emulator

STATE = {"pm25": 8.4, "pm10": 13.7}


@pytest.fixture
async def device() -> AsyncIterator[SDS011Emulator]:
    emulator = SDS011Emulator(**STATE, interval=None)
    async with emulator:
        yield emulator


@pytest.fixture
async def driver(device: SDS011Emulator) -> AsyncIterator[SDS011]:
    opened = await open_serial_driver(SDS011, device.path)
    yield opened
    await opened.close()


async def measure_while(
    driver: SDS011, action: Callable[[], None], timeout: float = 1.0
) -> dict[str, float]:
    task = asyncio.create_task(driver.measure(timeout))
    await asyncio.sleep(0)
    action()
    return await task


def test_decodes_a_captured_frame() -> None:
    """Frame from a real SDS011 (PyPMS docs): 6 tenths of µg/m³ for both sizes."""
    frame = bytes.fromhex("aa c0 06 00 06 00 58 d9 3d ab")
    assert sds011.FRAME_FORMAT.valid(frame)
    assert sds011.decode_data_frame(frame) == {"pm25": 0.6, "pm10": 0.6}


def test_sleep_and_work_commands_match_the_datasheet() -> None:
    sleep = "aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab"
    work = "aa b4 06 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 06 ab"
    assert sds011.encode_command(bytes([6, 1, 0])) == bytes.fromhex(sleep)
    assert sds011.encode_command(bytes([6, 1, 1])) == bytes.fromhex(work)


async def test_streamed_frames_carry_the_physical_state() -> None:
    async with SDS011Emulator(**STATE, interval=0.02) as device:
        driver = await open_serial_driver(SDS011, device.path)
        try:
            assert await driver.measure(1.0) == STATE
            assert await driver.measure(1.0) == STATE
        finally:
            await driver.close()


async def test_corrupted_frame_skipped_and_next_delivered(
    device: SDS011Emulator, driver: SDS011
) -> None:
    def bad_then_good() -> None:
        device.pm25 = 55.5
        device.corrupt_next()
        device.emit()
        device.pm25, device.pm10 = 2.3, 4.1
        device.split_next()
        device.emit()

    assert await measure_while(driver, bad_then_good) == {"pm25": 2.3, "pm10": 4.1}
    assert driver.checksum_errors == 1


async def test_reply_frames_and_noise_are_not_measurements(
    device: SDS011Emulator, driver: SDS011
) -> None:
    def noisy() -> None:
        # A stray command reply and a lone header byte precede the data frame.
        device.garbage_before_next(bytes.fromhex("aa c5 06 01 01 00 a1 60 09 ab aa"))
        device.emit()

    assert await measure_while(driver, noisy) == STATE
    assert driver.checksum_errors == 0


async def test_sleep_stops_the_stream_and_wake_restarts_it(
    device: SDS011Emulator, driver: SDS011
) -> None:
    await driver.sleep()
    assert not device.working
    with pytest.raises(FrameTimeoutError):
        await measure_while(driver, device.emit, timeout=0.1)
    await driver.wake()
    assert device.working
    assert await measure_while(driver, device.emit) == STATE


async def test_unplug_raises_oserror(device: SDS011Emulator, driver: SDS011) -> None:
    await device.unplug()
    with pytest.raises(OSError) as caught:
        await driver.measure(1.0)
    assert caught.value.errno == errno.EIO
