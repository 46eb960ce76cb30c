"""Frame resynchronisation on captured sensor output, and the serial driver catalog."""

from __future__ import annotations

import pytest

from custom_components.hearth.drivers import pms5003, sds011
from custom_components.hearth.drivers.quantities import QUANTITIES
from custom_components.hearth.drivers.serial_catalog import SERIAL_DRIVERS, open_serial_driver
from custom_components.hearth.drivers.serial_framing import FrameScanner

# Consecutive frames captured from a real PMS5003 (PyPMS docs, docs/sensors/Plantower.md).
PMS_CAPTURE = [
    bytes.fromhex(
        "42 4d 00 1c 00 00 00 08 00 08 00 00 00 08 00 08 00 d2 00 46 00 2d 00 1e"
        " 00 00 00 00 97 00 02 c5"
    ),
    bytes.fromhex(
        "42 4d 00 1c 00 00 00 07 00 07 00 00 00 07 00 07 00 d2 00 46 00 2d 00 1e"
        " 00 00 00 00 97 00 02 c1"
    ),
    bytes.fromhex(
        "42 4d 00 1c 00 00 00 07 00 07 00 00 00 07 00 07 00 bd 00 3f 00 2a 00 1b"
        " 00 00 00 00 97 00 02 9f"
    ),
]


def _feed_in_chunks(scanner: FrameScanner, stream: bytes, size: int) -> tuple[list[bytes], int]:
    frames: list[bytes] = []
    failures = 0
    for i in range(0, len(stream), size):
        got, bad = scanner.feed(stream[i : i + size])
        frames += got
        failures += bad
    return frames, failures


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16, 31, 33, 200])
def test_frames_survive_any_read_boundaries(size: int) -> None:
    """However the reads cut the stream, every captured frame comes out once, unchanged."""
    scanner = FrameScanner(pms5003.FRAME_FORMAT)
    frames, failures = _feed_in_chunks(scanner, b"".join(PMS_CAPTURE), size)
    assert frames == PMS_CAPTURE
    assert failures == 0


def test_corrupted_frame_costs_only_itself() -> None:
    """A bit error is counted once and the frame right behind it is still delivered."""
    bad = bytearray(PMS_CAPTURE[0])
    bad[11] ^= 0x04  # PM1.0 (atmospheric) low byte
    scanner = FrameScanner(pms5003.FRAME_FORMAT)
    frames, failures = _feed_in_chunks(scanner, bytes(bad) + PMS_CAPTURE[1] + PMS_CAPTURE[2], 5)
    assert frames == PMS_CAPTURE[1:]
    assert failures == 1


def test_spurious_header_does_not_swallow_the_real_frame() -> None:
    """Noise that looks like a header with a valid length overlaps the next frame."""
    noise = b"\x00\x42\x4d\x00\x1c\x13"  # a plausible header, then too few bytes
    scanner = FrameScanner(pms5003.FRAME_FORMAT)
    frames, failures = _feed_in_chunks(scanner, noise + PMS_CAPTURE[0] + PMS_CAPTURE[1], 4)
    assert frames == PMS_CAPTURE[:2]
    # The 32-byte candidate starting in the noise fails its checksum once.
    assert failures == 1


def test_garbage_without_headers_is_skipped_silently() -> None:
    garbage = bytes(range(0x50, 0x90)) + b"\x42"  # ends with half a header
    scanner = FrameScanner(pms5003.FRAME_FORMAT)
    frames, failures = _feed_in_chunks(scanner, garbage + PMS_CAPTURE[0], 3)
    assert frames == PMS_CAPTURE[:1]
    assert failures == 0


def test_frames_of_another_protocol_are_not_frames() -> None:
    """A PMS5003 stream fed to the SDS011 scanner yields nothing."""
    scanner = FrameScanner(sds011.FRAME_FORMAT)
    frames, _ = scanner.feed(b"".join(PMS_CAPTURE))
    assert frames == []


def test_catalog_covers_the_supported_sensors() -> None:
    assert set(SERIAL_DRIVERS) == {"pms5003", "pms7003", "sds011", "mhz19b", "senseair_s8"}
    for key, driver in SERIAL_DRIVERS.items():
        assert set(driver.quantities) <= set(QUANTITIES), key
        assert driver.baudrate == 9600, key
    assert SERIAL_DRIVERS["pms5003"].streaming
    assert not SERIAL_DRIVERS["mhz19b"].streaming


async def test_missing_port_raises_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        await open_serial_driver(SERIAL_DRIVERS["mhz19b"], str(tmp_path / "ttyUSB9"))
