"""Drawing primitives in reference pixels on a supersampled canvas."""

from __future__ import annotations

import functools
import math
from typing import cast

import cv2
import numpy as np

from signkd.data.render.signer import Signer


def shade(colour, factor: float) -> tuple[int, int, int]:
    """`colour` scaled by `factor`, clipped to 0..255 (memoised: a frame asks for the same few
    hundred shades at every exposure instant)."""
    return _shade(tuple(colour), float(factor))


@functools.lru_cache(maxsize=4096)
def _shade(colour: tuple, factor: float) -> tuple[int, int, int]:
    return cast("tuple[int, int, int]", tuple(min(255, max(0, int(c * factor))) for c in colour))


class Canvas:
    """Draws in reference pixels onto a supersampled image through the camera transform.

    Points are converted with plain Python arithmetic: a frame has a few hundred primitives and
    numpy's per-call overhead would dominate the render time.
    """

    SHIFT = 4  # fixed-point bits for sub-pixel drawing

    def __init__(self, image: np.ndarray, scale: float, offset):
        self.image = image
        self.scale = float(scale)  # reference px -> canvas px
        self.ox, self.oy = float(offset[0]), float(offset[1])  # canvas px
        self.k = self.scale * (1 << self.SHIFT)
        self.kx, self.ky = self.ox * (1 << self.SHIFT), self.oy * (1 << self.SHIFT)

    def _pt(self, p) -> tuple[int, int]:
        k = self.k
        return int(round(p[0] * k + self.kx)), int(round(p[1] * k + self.ky))

    def _len(self, v: float) -> int:
        return max(1, int(round(v * self.scale)))

    def line(self, a, b, colour, width: float) -> None:
        cv2.line(self.image, self._pt(a), self._pt(b), colour, self._len(width), cv2.LINE_AA, self.SHIFT)

    def circle(self, c, r: float, colour) -> None:
        cv2.circle(self.image, self._pt(c), int(round(r * self.k)), colour, -1, cv2.LINE_AA, self.SHIFT)

    def ellipse(self, c, axes, angle: float, colour, start=0, end=360, thickness: float = -1) -> None:
        ax = (int(round(axes[0] * self.k)), int(round(axes[1] * self.k)))
        th = -1 if thickness < 0 else self._len(thickness)
        cv2.ellipse(self.image, self._pt(c), ax, angle, start, end, colour, th, cv2.LINE_AA, self.SHIFT)

    def poly(self, pts, colour, outline=None, width: float = 1.0) -> None:
        p = np.array([self._pt(q) for q in pts], np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(self.image, [p], colour, cv2.LINE_AA, self.SHIFT)
        if outline is not None:
            cv2.polylines(self.image, [p], True, outline, self._len(width), cv2.LINE_AA, self.SHIFT)


def limb(cv: Canvas, a, b, colour, width: float) -> None:
    """A thick shaded segment: dark rim, body, and a highlight toward the light (upper left)."""
    ax, ay, bx, by = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    cv.line((ax, ay), (bx, by), shade(colour, 0.62), width + 1.4)
    cv.line((ax, ay), (bx, by), colour, width)
    dx, dy = bx - ax, by - ay
    norm = math.hypot(dx, dy)
    if norm > 1e-6:
        nx, ny = -dy / norm, dx / norm
        if nx + ny > 0:
            nx, ny = -nx, -ny
        ox, oy = nx * width * 0.22, ny * width * 0.22
        cv.line((ax + ox, ay + oy), (bx + ox, by + oy), shade(colour, 1.13), max(width * 0.35, 0.6))


def background(signer: Signer, height: int, width: int) -> np.ndarray:
    """The studio backdrop: the signer's colour with a soft vertical gradient."""
    grad = np.linspace(1.06, 0.9, height)[:, None, None]
    column = np.clip(np.array(signer.background, np.float64)[None, None] * grad, 0, 255).astype(np.uint8)
    return column.repeat(width, axis=1)

