"""A small labelled bar chart as a PNG, in pure Python (zlib + struct): mail clients show PNGs, few show SVG.

The chart carries its own axes, tick labels and legend, drawn with a 3x5 bitmap font at twice its size,
so a reader of the mail can tell the days (or hours) and the counts without the surrounding HTML.
"""

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
TEXT: Color = (71, 85, 105)

# 3x5 glyphs, one string of three bits per row (upper case only: labels are upper-cased when drawn).
_GLYPHS: dict[str, tuple[str, str, str, str, str]] = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    "A": ("010", "101", "111", "101", "101"),
    "B": ("110", "101", "110", "101", "110"),
    "C": ("011", "100", "100", "100", "011"),
    "D": ("110", "101", "101", "101", "110"),
    "E": ("111", "100", "110", "100", "111"),
    "F": ("111", "100", "110", "100", "100"),
    "G": ("011", "100", "101", "101", "011"),
    "H": ("101", "101", "111", "101", "101"),
    "I": ("111", "010", "010", "010", "111"),
    "J": ("001", "001", "001", "101", "010"),
    "K": ("101", "101", "110", "101", "101"),
    "L": ("100", "100", "100", "100", "111"),
    "M": ("101", "111", "111", "101", "101"),
    "N": ("110", "101", "101", "101", "101"),
    "O": ("010", "101", "101", "101", "010"),
    "P": ("110", "101", "110", "100", "100"),
    "Q": ("010", "101", "101", "110", "011"),
    "R": ("110", "101", "110", "101", "101"),
    "S": ("011", "100", "010", "001", "110"),
    "T": ("111", "010", "010", "010", "010"),
    "U": ("101", "101", "101", "101", "111"),
    "V": ("101", "101", "101", "101", "010"),
    "W": ("101", "101", "111", "111", "101"),
    "X": ("101", "101", "010", "101", "101"),
    "Y": ("101", "101", "010", "010", "010"),
    "Z": ("111", "001", "010", "100", "111"),
    " ": ("000", "000", "000", "000", "000"),
    "-": ("000", "000", "111", "000", "000"),
    ":": ("000", "010", "000", "010", "000"),
    ".": ("000", "000", "000", "000", "010"),
    ",": ("000", "000", "000", "010", "100"),
    "/": ("001", "001", "010", "100", "100"),
    "(": ("010", "100", "100", "100", "010"),
    ")": ("010", "001", "001", "001", "010"),
}
SCALE = 2
GLYPH_W, GLYPH_H = 3 * SCALE, 5 * SCALE
ADVANCE = GLYPH_W + SCALE  # one scaled pixel between letters

_MARGIN_LEFT = 40  # room for the count labels
_MARGIN_RIGHT = 8
_MARGIN_TOP = 22  # room for the legend
_MARGIN_BOTTOM = 18  # room for the bucket labels


def text_width(text: str) -> int:
    """Width in pixels of `text` drawn by `draw_text`."""
    return max(len(text) * ADVANCE - SCALE, 0)


def glyph_mask(text: str) -> list[list[bool]]:
    """The pixels `draw_text` sets for `text` (rows of GLYPH_H, columns of text_width)."""
    mask = [[False] * text_width(text) for _ in range(GLYPH_H)]
    for index, char in enumerate(text.upper()):
        glyph = _GLYPHS.get(char, _GLYPHS[" "])
        for gy, bits in enumerate(glyph):
            for gx, bit in enumerate(bits):
                if bit == "1":
                    for dy in range(SCALE):
                        for dx in range(SCALE):
                            mask[gy * SCALE + dy][index * ADVANCE + gx * SCALE + dx] = True
    return mask


class Canvas:
    """An RGB pixel buffer with the few drawing operations a bar chart needs."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(BACKGROUND) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        """Fill a rectangle, clipped to the canvas."""
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        run = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + len(run)] = run

    def text(self, x: int, y: int, text: str, color: Color = TEXT) -> None:
        """Draw `text` with its top-left corner at (x, y)."""
        for dy, row in enumerate(glyph_mask(text)):
            for dx, on in enumerate(row):
                if on:
                    self.rect(x + dx, y + dy, 1, 1, color)

    def png(self) -> bytes:
        """The canvas as a PNG."""
        stride = self.width * 3
        return encode_png(
            self.width, self.height, [bytes(self.pixels[r * stride : (r + 1) * stride]) for r in range(self.height)]
        )


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


def _nice_top(peak: int) -> int:
    """The y axis' top: the smallest of 2, 4, 6, 8 times a power of ten that holds the peak (even, so the
    middle tick is a whole number too)."""
    magnitude = 1
    while True:
        for step in (2, 4, 6, 8):
            if step * magnitude >= peak:
                return step * magnitude
        magnitude *= 10


def bar_chart(
    values: Sequence[int],
    labels: Sequence[str] = (),
    *,
    legend: str = "threads",
    width: int = 560,
    height: int = 180,
) -> bytes:
    """Bars for `values` (e.g. threads per day) with a count axis, one label per bar where they fit, and a
    legend naming the series and the peak (the peak bar is darker)."""
    canvas = Canvas(width, height)
    plot_x, plot_y = _MARGIN_LEFT, _MARGIN_TOP
    plot_w = max(width - _MARGIN_LEFT - _MARGIN_RIGHT, 1)
    plot_h = max(height - _MARGIN_TOP - _MARGIN_BOTTOM, 1)
    baseline = plot_y + plot_h
    peak_value = max(values, default=0)
    top = _nice_top(peak_value)

    # Count axis: gridlines and labels at 0, half and the top.
    for tick in (0, top // 2, top):
        y = baseline - round(tick / top * plot_h)
        canvas.rect(plot_x, y, plot_w, 1, GRID if tick else AXIS)
        label = str(tick)
        canvas.text(plot_x - 4 - text_width(label), y - GLYPH_H // 2, label)
    canvas.rect(plot_x - 1, plot_y, 1, plot_h + 1, AXIS)

    slots = max(len(values), 1)
    slot = plot_w / slots
    bar = max(int(slot * 0.75), 1)
    peak = values.index(peak_value) if values and peak_value > 0 else -1
    widest = max((text_width(str(label)) for label in labels), default=0)
    every = 1
    while widest and every * slot < widest + 4:  # label every n-th bar so labels never overlap
        every += 1
    for i, value in enumerate(values):
        x = plot_x + round(i * slot + (slot - bar) / 2)
        h = round(value / top * plot_h) if value > 0 else 0
        canvas.rect(x, baseline - h, bar, h, PEAK if i == peak else BAR)
        if i < len(labels) and i % every == 0:
            label = str(labels[i])
            canvas.text(x + (bar - text_width(label)) // 2, baseline + 5, label)

    # Legend: the series, then the peak.
    canvas.rect(plot_x, 5, GLYPH_H, GLYPH_H, BAR)
    canvas.text(plot_x + GLYPH_H + 4, 5, legend)
    if peak >= 0:
        x = plot_x + GLYPH_H + 4 + text_width(legend) + 16
        canvas.rect(x, 5, GLYPH_H, GLYPH_H, PEAK)
        peak_label = f"peak {peak_value}" + (f" ({labels[peak]})" if peak < len(labels) else "")
        canvas.text(x + GLYPH_H + 4, 5, peak_label)
    return canvas.png()
