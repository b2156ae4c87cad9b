"""A small bar chart as a PNG, in pure Python (zlib + struct): mail clients show PNGs, few show SVG."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]
BACKGROUND: Color = (255, 255, 255)
BAR: Color = (37, 99, 235)
PEAK: Color = (30, 64, 175)
AXIS: Color = (148, 163, 184)
GRID: Color = (241, 245, 249)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(width: int, height: int, rows: Sequence[bytes]) -> bytes:
    """Encode 8-bit RGB scanlines (each `width * 3` bytes) as a PNG."""
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (None) on every scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )


def bar_chart(values: Sequence[int], width: int = 560, height: int = 140) -> bytes:
    """Bars for `values` (e.g. threads per day), scaled to the largest; the peak bar is darker."""
    pad = 6
    slots = max(len(values), 1)
    slot = max((width - 2 * pad) // slots, 1)
    bar = max(slot - max(slot // 4, 1), 1)
    top = max(values, default=0) or 1
    plot = height - 2 * pad
    heights = [round(v / top * plot) if v > 0 else 0 for v in values]
    peak = heights.index(max(heights)) if values and max(values) > 0 else -1
    rows: list[bytes] = []
    for y in range(height):
        from_bottom = height - pad - y  # 1 on the baseline row above the axis
        if from_bottom == 0:
            rows.append(bytes(AXIS) * width)
            continue
        fill = GRID if from_bottom in (plot // 2, plot) else BACKGROUND
        # A scanline is built from runs (a few dozen per row), not pixel by pixel.
        parts = [bytes(fill) * pad]
        for i, h in enumerate(heights):
            color = (PEAK if i == peak else BAR) if 0 < from_bottom <= h else fill
            parts.append(bytes(color) * bar + bytes(fill) * (slot - bar))
        used = pad + slot * len(heights)
        parts.append(bytes(fill) * max(width - used, 0))
        rows.append(b"".join(parts)[: width * 3])
    return encode_png(width, height, rows)
