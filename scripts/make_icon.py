"""Draw the Hearth brand icon (a house sheltering a flame) as a 256x256 RGBA PNG.

Run: python scripts/make_icon.py [OUT]   (default custom_components/hearth/brand/icon.png)
Shapes are signed-distance fields rendered at 4x and box-filtered down for anti-aliasing.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

SIZE = 256
SS = 4  # supersampling factor


def _png(rgba: np.ndarray) -> bytes:
    height, width, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _rounded_box(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, hw: float, hh: float, r: float
) -> np.ndarray:
    qx = np.abs(x - cx) - hw + r
    qy = np.abs(y - cy) - hh + r
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - r


def _half_plane(
    x: np.ndarray, y: np.ndarray, p: tuple[float, float], q: tuple[float, float]
) -> np.ndarray:
    """Signed distance to the line p->q; its sign tells the side."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    return ((x - p[0]) * dy - (y - p[1]) * dx) / np.hypot(dx, dy)


def draw() -> np.ndarray:
    n = SIZE * SS
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n  # unit square, y down
    rgb = np.zeros((n, n, 3))
    alpha = np.zeros((n, n))

    def paint(mask: np.ndarray, colour: np.ndarray) -> None:
        nonlocal rgb, alpha
        rgb = np.where(mask[..., None], colour, rgb)
        alpha = np.where(mask, 1.0, alpha)

    tile = _rounded_box(x, y, 0.5, 0.5, 0.48, 0.48, 0.12) < 0
    warm = np.stack([0.20 + 0.10 * y, 0.22 + 0.05 * y, 0.35 + 0.10 * y], axis=-1)
    paint(tile, warm)

    roof = np.maximum.reduce(
        [
            _half_plane(x, y, (0.14, 0.50), (0.5, 0.16)),
            _half_plane(x, y, (0.5, 0.16), (0.86, 0.50)),
            y - 0.50,
        ]
    )
    walls = _rounded_box(x, y, 0.5, 0.66, 0.27, 0.19, 0.03)
    house = np.minimum(roof, walls) < 0
    paint(house, np.array([0.97, 0.95, 0.90]))

    # A flame: a circle merged with a teardrop tip, with a brighter core.
    def flame(cx: float, cy: float, r: float) -> np.ndarray:
        body = np.hypot(x - cx, y - cy) - r
        tip = np.maximum.reduce(
            [
                _half_plane(x, y, (cx - r * 0.98, cy - r * 0.2), (cx, cy - 2.3 * r)),
                _half_plane(x, y, (cx, cy - 2.3 * r), (cx + r * 0.98, cy - r * 0.2)),
                y - cy,
            ]
        )
        return np.minimum(body, tip)

    paint(flame(0.5, 0.70, 0.12) < 0, np.array([0.95, 0.45, 0.12]))
    paint(flame(0.5, 0.74, 0.065) < 0, np.array([1.0, 0.80, 0.25]))

    rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1)
    rgba = rgba.reshape(SIZE, SS, SIZE, SS, 4).mean(axis=(1, 3))
    # Un-premultiply after filtering so edges keep their colour.
    a = rgba[..., 3:4]
    rgba[..., :3] = np.divide(rgba[..., :3], a, out=np.zeros_like(rgba[..., :3]), where=a > 0)
    return np.clip(np.round(rgba * 255), 0, 255).astype(np.uint8)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "custom_components/hearth/brand/icon.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_png(draw()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
