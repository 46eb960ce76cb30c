"""PMS5003 driver against captured frames and an emulated sensor on a real pty."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable

import pytest

from custom_components.hearth.drivers import pms5003
from custom_components.hearth.drivers.errors import FrameTimeoutError
from custom_components.hearth.drivers.pms5003 import PMS5003, PMS7003
from custom_components.hearth.drivers.serial_catalog import open_serial_driver
from custom_components.hearth.emulators.pms5003 import PMS5003Emulator, PMS7003Emulator

STATE = {"pm1": 3.0, "pm25": 17.0, "pm10": 40.0}


@pytest.fixture
async def device() -> AsyncIterator[PMS5003Emulator]:
    emulator = PMS5003Emulator(**STATE, interval=None)
    async with emulator:
        yield emulator


@pytest.fixture
async def driver(device: PMS5003Emulator) -> AsyncIterator[PMS5003]:
    opened = await open_serial_driver(PMS5003, device.path)
    yield opened
    await opened.close()


async def measure_while(
    driver: PMS5003, action: Callable[[], None], timeout: float = 1.0
) -> dict[str, float]:
    """Start a measurement, then let the device act: only later frames can answer it."""
    task = asyncio.create_task(driver.measure(timeout))
    await asyncio.sleep(0)
    action()
    return await task


async def eventually(condition: Callable[[], bool], timeout: float = 1.0) -> None:
    """Wait for emulator state that its reader callback changes (it exposes no event)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.002)


def test_decodes_atmospheric_words_of_a_captured_frame() -> None:
    """A PMS5003T capture (same first six words) whose CF=1 and atmospheric values differ."""
    frame = bytes.fromhex(
        "42 4d 00 1c 00 17 00 27 00 29 00 16 00 23 00 29 10 08 04 a9 01 16 00 0c 00 d4 00 e0"
        " 9a 00 04 aa"
    )
    assert pms5003.FRAME_FORMAT.valid(frame)
    # CF=1 words are 23, 39, 41; the atmospheric ones 22, 35, 41.
    assert pms5003.decode_data_frame(frame) == {"pm1": 22.0, "pm25": 35.0, "pm10": 41.0}


def test_commands_match_the_datasheet() -> None:
    assert pms5003.encode_command(0xE4, 0) == bytes.fromhex("42 4d e4 00 00 01 73")
    assert pms5003.encode_command(0xE4, 1) == bytes.fromhex("42 4d e4 00 01 01 74")
    assert pms5003.encode_command(0xE1, 0) == bytes.fromhex("42 4d e1 00 00 01 70")
    assert pms5003.encode_command(0xE1, 1) == bytes.fromhex("42 4d e1 00 01 01 71")
    assert pms5003.encode_command(0xE2) == bytes.fromhex("42 4d e2 00 00 01 71")


async def test_streamed_frames_carry_the_physical_state() -> None:
    async with PMS5003Emulator(**STATE, interval=0.02) as device:
        driver = await open_serial_driver(PMS5003, device.path)
        try:
            assert await driver.measure(1.0) == STATE
            assert await driver.measure(1.0) == STATE
            assert driver.checksum_errors == 0
        finally:
            await driver.close()


async def test_pms7003_speaks_the_same_protocol() -> None:
    async with PMS7003Emulator(pm1=1, pm25=2, pm10=3, interval=0.02) as device:
        driver = await open_serial_driver(PMS7003, device.path)
        try:
            assert await driver.measure(1.0) == {"pm1": 1.0, "pm25": 2.0, "pm10": 3.0}
        finally:
            await driver.close()


async def test_corrupted_frames_are_skipped_and_counted(
    device: PMS5003Emulator, driver: PMS5003
) -> None:
    def two_bad_then_good() -> None:
        device.pm25 = 99.0
        device.corrupt_next(2)
        device.emit()
        device.emit()
        device.pm25 = 23.0
        device.emit()

    result = await measure_while(driver, two_bad_then_good)
    assert result["pm25"] == 23.0
    assert driver.checksum_errors == 2


async def test_frame_split_across_reads(device: PMS5003Emulator, driver: PMS5003) -> None:
    chunks: list[bytes] = []
    read = asyncio.Event()
    feed = driver._scanner.feed

    def spy(data: bytes) -> tuple[list[bytes], int]:
        chunks.append(data)
        read.set()
        return feed(data)

    driver._scanner.feed = spy  # type: ignore[method-assign]
    frame = device.data_frame()
    task = asyncio.create_task(driver.measure(1.0))
    device.send(frame[:13])
    # The second half goes out only after the driver has read the first on its own.
    await read.wait()
    device.send(frame[13:])
    assert await task == STATE
    assert chunks == [frame[:13], frame[13:]]


async def test_garbage_between_frames(device: PMS5003Emulator, driver: PMS5003) -> None:
    def noisy() -> None:
        # Noise with a false header (invalid length) and a dangling first header byte.
        device.garbage_before_next(b"\x13\x42\x4d\x00\x99\x37\x42")
        device.emit()

    assert await measure_while(driver, noisy) == STATE
    assert driver.checksum_errors == 0


async def test_sleep_wake_and_passive_mode(device: PMS5003Emulator, driver: PMS5003) -> None:
    await driver.sleep()
    assert device.asleep
    with pytest.raises(FrameTimeoutError):
        await measure_while(driver, device.emit, timeout=0.1)

    await driver.wake()  # no acknowledgement to wait for
    await eventually(lambda: not device.asleep)
    assert await measure_while(driver, device.emit) == STATE

    await driver.set_passive(True)
    assert device.passive
    device.received.clear()
    # No timer and no emit(): the frame comes only because the driver asks for it.
    assert await driver.measure(1.0) == STATE
    assert bytes(device.received) == pms5003.encode_command(0xE2)


async def test_unplug_raises_oserror_and_replug_recovers(
    device: PMS5003Emulator, driver: PMS5003
) -> None:
    assert await measure_while(driver, device.emit) == STATE
    await device.unplug()
    with pytest.raises(OSError) as caught:
        await driver.measure(1.0)
    assert caught.value.errno == errno.EIO
    await driver.close()

    path = await device.start()
    replugged = await open_serial_driver(PMS5003, path)
    try:
        assert await measure_while(replugged, device.emit) == STATE
    finally:
        await replugged.close()


async def test_drifting_state_is_reported_frame_by_frame() -> None:
    """With drift on, each frame reports the emulator's state of that moment (rounded)."""
    async with PMS5003Emulator(**STATE, interval=None, drift=3.0, seed=7) as device:
        driver = await open_serial_driver(PMS5003, device.path)
        try:
            seen = []
            for _ in range(10):
                reading = await measure_while(driver, device.emit)
                truth = {"pm1": device.pm1, "pm25": device.pm25, "pm10": device.pm10}
                assert reading == {k: float(round(v)) for k, v in truth.items()}
                assert reading["pm1"] <= reading["pm25"] <= reading["pm10"]
                seen.append(reading["pm25"])
            assert len(set(seen)) > 1
        finally:
            await driver.close()
