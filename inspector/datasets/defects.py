"""Drawing plausible surface defects onto texture images, with their ground-truth masks.

Every drawer takes a float32 ``HxWx3`` image in [0, 255] and a seeded
``numpy.random.Generator`` and returns the defective image and a boolean mask
of the pixels the defect changed visibly. Sizes are expressed relative to a
256-pixel image and scaled to the actual size, so a dataset generated at a
different resolution looks the same.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

DEFECT_TYPES: tuple[str, ...] = ("scratch", "crack", "hole", "stain", "contamination")

MIN_AREA = 0.003
MAX_AREA = 0.05

_SUPERSAMPLE = 4
_MAX_ATTEMPTS = 60

Drawer = Callable[[np.ndarray, np.random.Generator, np.ndarray], tuple[np.ndarray, np.ndarray]]


def add_defect(
    image: np.ndarray,
    defect_type: str,
    rng: np.random.Generator,
    foreign: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one defect of the given type onto a copy of ``image``.

    Args:
        image: ``HxWx3`` uint8 RGB image of good material.
        defect_type: One of :data:`DEFECT_TYPES`.
        rng: Random generator; the result depends only on its state.
        foreign: ``HxWx3`` uint8 image of another material, pasted by
            ``contamination``. Defaults to a recoloured, rotated copy of ``image``.

    Returns:
        The defective ``HxWx3`` uint8 image and its ``HxW`` bool mask, whose area
        is between :data:`MIN_AREA` and :data:`MAX_AREA` of the image.

    Raises:
        ValueError: for an unknown defect type.
        RuntimeError: if no defect within the area bounds could be drawn.
    """
    try:
        drawer = _DRAWERS[defect_type]
    except KeyError:
        raise ValueError(
            f"unknown defect type {defect_type!r}; expected one of {', '.join(DEFECT_TYPES)}"
        ) from None
    if foreign is None:
        foreign = np.ascontiguousarray(np.rot90(image)[:, :, ::-1])
    if foreign.shape != image.shape:
        foreign = cv2.resize(
            foreign, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA
        )
    base = image.astype(np.float32)
    for _ in range(_MAX_ATTEMPTS):
        out, mask = drawer(base, rng, foreign.astype(np.float32))
        if MIN_AREA <= mask.mean() <= MAX_AREA:
            return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask
    raise RuntimeError(
        f"could not draw a {defect_type} within the area bounds on a {image.shape} image"
    )


def _unit(image: np.ndarray) -> float:
    """Pixels per unit length of the 256-pixel reference image."""
    return min(image.shape[:2]) / 256.0


def _random_point(rng: np.random.Generator, shape: tuple[int, ...], margin: float) -> np.ndarray:
    h, w = shape[:2]
    return np.array(
        [rng.uniform(margin * w, (1 - margin) * w), rng.uniform(margin * h, (1 - margin) * h)]
    )


def _smooth_noise(rng: np.random.Generator, n: int, smoothness: float) -> np.ndarray:
    """1-D noise in about [-1, 1] that varies over ``smoothness`` samples."""
    pad = 2 * int(np.ceil(smoothness))
    raw = rng.normal(size=n + 2 * pad)
    kernel = cv2.getGaussianKernel(2 * pad + 1, max(smoothness, 0.5)).ravel()
    smooth = np.convolve(raw, kernel, mode="valid")
    return smooth / (np.abs(smooth).max() + 1e-6)


def _noise_field(rng: np.random.Generator, shape: tuple[int, ...], cells: int) -> np.ndarray:
    """Smooth 2-D noise in about [-1, 1] with ``cells`` random values across the image."""
    coarse = rng.normal(size=(cells + 1, cells + 1)).astype(np.float32)
    field = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return field / (np.abs(field).max() + 1e-6)


def _render_strokes(
    shape: tuple[int, ...], strokes: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of polylines with per-vertex widths (pixels)."""
    h, w = shape[:2]
    s = _SUPERSAMPLE
    canvas = np.zeros((h * s, w * s), np.uint8)
    for points, widths in strokes:
        p = np.round(points * s).astype(np.int32)
        for i in range(len(p) - 1):
            thickness = max(1, int(round(0.5 * (widths[i] + widths[i + 1]) * s)))
            cv2.line(
                canvas,
                tuple(map(int, p[i])),
                tuple(map(int, p[i + 1])),
                255,
                thickness,
                cv2.LINE_AA,
            )
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _render_polygon(shape: tuple[int, ...], polygon: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a filled polygon."""
    h, w = shape[:2]
    s = _SUPERSAMPLE
    canvas = np.zeros((h * s, w * s), np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon * s).astype(np.int32)], 255, cv2.LINE_AA)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _blob(
    rng: np.random.Generator, center: np.ndarray, radius: float, aspect: float, roughness: float
) -> np.ndarray:
    """An irregular closed outline: an ellipse with a few random low-frequency harmonics."""
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += roughness / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.4, None)
    angle = rng.uniform(0, np.pi)
    x, y = r * np.cos(theta), aspect * r * np.sin(theta)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], axis=1)


def _shift(values: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``values`` moved by ``(dx, dy)`` pixels, zero where nothing moved in."""
    h, w = values.shape[:2]
    return cv2.warpAffine(values, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h))


def _dilate(mask: np.ndarray, pixels: int = 1) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _walk(
    rng: np.random.Generator,
    start: np.ndarray,
    heading: float,
    length: float,
    step: float,
    turn: float,
    momentum: float,
) -> np.ndarray:
    """Points of a random walk whose heading changes by correlated random turns."""
    n = max(2, int(length / step))
    turns = np.empty(n)
    d = 0.0
    for i in range(n):
        d = momentum * d + rng.normal(0.0, turn)
        turns[i] = d
    headings = heading + np.cumsum(turns)
    steps = step * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


def _scratch(
    image: np.ndarray, rng: np.random.Generator, foreign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    u = _unit(image)
    size = min(image.shape[:2])
    length = rng.uniform(0.25, 0.55) * size
    start = _random_point(rng, image.shape, 0.2)
    heading = rng.uniform(0, 2 * np.pi)
    points = _walk(rng, start, heading, length, 2.0 * u, turn=0.012, momentum=0.9)
    t = np.linspace(0, 1, len(points))
    taper = np.sin(np.pi * np.clip(t, 0.02, 0.98)) ** 0.4
    wobble = 0.75 + 0.25 * _smooth_noise(rng, len(points), 6.0)
    width = max(1.0, rng.uniform(1.6, 3.0) * u) * taper * wobble
    coverage = _render_strokes(image.shape, [(points, width)])
    alpha = coverage * np.clip(0.75 + 0.4 * _noise_field(rng, image.shape, 5), 0.4, 1.0)
    out = image.copy()
    if rng.random() < 0.6:
        out += alpha[..., None] * (250.0 - out) * rng.uniform(0.75, 0.95)
        # a worn groove catches light on one edge and throws a faint shadow on the other
        shadow = np.clip(_shift(alpha, 1, 1) - alpha, 0, 1)
        out *= 1.0 - 0.35 * shadow[..., None]
    else:
        out *= 1.0 - rng.uniform(0.65, 0.85) * alpha[..., None]
        light = np.clip(_shift(alpha, -1, -1) - alpha, 0, 1)
        out += light[..., None] * (255.0 - out) * 0.4
    return out, _dilate(coverage > 0.15)


def _crack(
    image: np.ndarray, rng: np.random.Generator, foreign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    u = _unit(image)
    size = min(image.shape[:2])
    length = rng.uniform(0.22, 0.45) * size
    start = _random_point(rng, image.shape, 0.25)
    heading = rng.uniform(0, 2 * np.pi)
    trunk = _walk(rng, start, heading, length, 3.0 * u, turn=0.35, momentum=-0.3)
    trunk_width = max(1.2, rng.uniform(1.6, 2.8) * u)
    t = np.linspace(0, 1, len(trunk))
    strokes = [(trunk, trunk_width * (0.35 + 0.65 * np.sin(np.pi * t) ** 0.6))]
    for _ in range(rng.integers(1, 4)):
        i = rng.integers(len(trunk) // 5, max(len(trunk) // 5 + 1, 4 * len(trunk) // 5))
        side = rng.choice([-1.0, 1.0])
        branch = _walk(
            rng,
            trunk[i],
            heading + side * rng.uniform(0.5, 1.1),
            rng.uniform(0.2, 0.45) * length,
            3.0 * u,
            turn=0.35,
            momentum=-0.3,
        )
        tb = np.linspace(0, 1, len(branch))
        strokes.append((branch, max(0.9, 0.6 * trunk_width) * (1.0 - 0.7 * tb)))
    alpha = _render_strokes(image.shape, strokes)
    out = image * (1.0 - 0.8 * alpha[..., None])
    edge = np.clip(_shift(alpha, 0, -1) - alpha, 0, 1)
    out += edge[..., None] * (255.0 - out) * 0.3
    return out, _dilate(alpha > 0.15)


def _hole(
    image: np.ndarray, rng: np.random.Generator, foreign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    u = _unit(image)
    h, w = image.shape[:2]
    center = _random_point(rng, image.shape, 0.15)
    radius = max(2.5, rng.uniform(7.0, 15.0) * u)
    outline = _blob(rng, center, radius, rng.uniform(0.6, 1.0), roughness=0.25)
    inside = _render_polygon(image.shape, outline)
    light = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # projection on the light direction, -1 at the lit rim, +1 at the far inner wall
    proj = ((xx - center[0]) * np.cos(light) + (yy - center[1]) * np.sin(light)) / radius
    # the hole shows the darkened, defocused material below; the far inner wall catches light
    below = cv2.GaussianBlur(image, (0, 0), max(1.0, 2.0 * u))
    depth = 0.12 + 0.35 * np.clip(proj, 0, 1) ** 1.5
    out = image * (1 - inside[..., None]) + (depth[..., None] * below) * inside[..., None]
    ring = np.clip(cv2.GaussianBlur(inside, (0, 0), max(1.0, 1.5 * u)) - inside, 0, 1) * 3.0
    rim = np.clip(ring, 0, 1) * np.clip(-1.5 * proj, -1, 1)
    out += np.clip(rim, 0, None)[..., None] * (255.0 - out) * 0.5
    out *= 1.0 - 0.45 * np.clip(-rim, 0, None)[..., None]
    return out, _dilate(inside > 0.3)


_STAIN_COLOURS = np.array(
    [
        [0.35, 0.32, 0.25],  # oil
        [1.15, 0.65, 0.35],  # rust
        [0.55, 0.50, 0.45],  # dirt
        [0.45, 0.50, 0.90],  # ink
        [1.35, 1.30, 1.20],  # bleach
    ],
    np.float32,
)


def _stain(
    image: np.ndarray, rng: np.random.Generator, foreign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    u = _unit(image)
    center = _random_point(rng, image.shape, 0.2)
    radius = max(4.0, rng.uniform(12.0, 28.0) * u)
    outline = _blob(rng, center, radius, rng.uniform(0.55, 1.0), roughness=0.5)
    shape = _render_polygon(image.shape, outline)
    alpha = cv2.GaussianBlur(shape, (0, 0), max(0.8, radius * rng.uniform(0.12, 0.25)))
    colour = _STAIN_COLOURS[rng.integers(len(_STAIN_COLOURS))]
    # drying leaves a slightly stronger ring at the border ("coffee ring")
    ring = 4.0 * alpha * (1.0 - alpha)
    gain = 1.0 + (alpha + 0.25 * ring)[..., None] * (colour - 1.0)
    return image * gain, alpha > 0.5


def _contamination(
    image: np.ndarray, rng: np.random.Generator, foreign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    u = _unit(image)
    center = _random_point(rng, image.shape, 0.2)
    radius = max(3.5, rng.uniform(9.0, 20.0) * u)
    outline = _blob(rng, center, radius, rng.uniform(0.4, 1.0), roughness=0.7)
    alpha = cv2.GaussianBlur(_render_polygon(image.shape, outline), (0, 0), max(0.6, 0.8 * u))
    # the particle lies on the surface and casts a soft shadow away from the light above
    drop = max(1.0, 2.5 * u)
    shadow = _shift(alpha, drop * rng.uniform(-1.0, 1.0), drop)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, 2.0 * u)) * (1.0 - alpha)
    patch = foreign * rng.uniform(0.8, 1.15)
    out = image * (1.0 - 0.45 * shadow[..., None])
    out = out * (1.0 - alpha[..., None]) + patch * alpha[..., None]
    return out, alpha > 0.5


_DRAWERS: dict[str, Drawer] = {
    "scratch": _scratch,
    "crack": _crack,
    "hole": _hole,
    "stain": _stain,
    "contamination": _contamination,
}
