"""A bar chart of group totals as PNG bytes, drawn with matplotlib's Agg backend.

The figure is built with the object API (``Figure`` and ``FigureCanvasAgg``), never ``pyplot``,
so handlers on several threads can draw at once. The PNG carries no software metadata, so the
same totals give the same bytes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["PNG_SIGNATURE", "png_size", "render_bar_chart"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZE_IN = (8.0, 4.5)
DPI = 100
BAR_COLOUR = "#3b75af"


def render_bar_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, ylabel: str
) -> bytes:
    """A PNG with one bar per label and its value written on top."""
    figure = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bars = axes.bar(list(labels), list(values), color=BAR_COLOUR)
    axes.bar_label(bars, fmt="{:,.2f}", padding=2)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.margins(y=0.15)
    axes.spines[["top", "right"]].set_visible(False)
    output = io.BytesIO()
    figure.savefig(output, format="png", dpi=DPI, metadata={"Software": None})
    return output.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height in pixels, from a PNG's header; ValueError if ``data`` is no PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
