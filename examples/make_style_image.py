"""Generate ``examples/style.jpg``, the example style image for nstcli.

The image is painted procedurally: a night-sky scene in a bold blue and
yellow palette, loosely in the manner of Van Gogh's *The Starry Night*.
Thousands of semi-transparent, curved brush strokes follow a swirling
flow field; each stroke is made of several thin "bristle" lines with
slightly different colours, which gives the visible painterly texture.
Glowing stars and a moon are built from concentric ring strokes,
a dark cypress rises on the left and rolling hills fill the bottom.

The output is fully deterministic for a given seed (default 1889), so
anyone can regenerate the file::

    python examples/make_style_image.py                # writes examples/style.jpg
    python examples/make_style_image.py -o out.jpg --size 384 --seed 7

Requirements: Pillow and numpy only.

Licence: this script and the image it produces (``examples/style.jpg``)
are released by the nstcli project under CC0 1.0 Universal (public domain
dedication), https://creativecommons.org/publicdomain/zero/1.0/.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Palette (RGB).
DEEP_BLUE = (18, 34, 92)
ULTRAMARINE = (30, 60, 150)
COBALT = (45, 95, 185)
CERULEAN = (80, 140, 210)
SKY_LIGHT = (150, 190, 230)
PALE = (215, 230, 235)
TEAL = (40, 110, 130)
YELLOW = (245, 210, 60)
GOLD = (230, 170, 40)
CREAM = (250, 240, 170)
ORANGE = (225, 130, 40)
CYPRESS_DARK = (22, 30, 24)
CYPRESS_GREEN = (40, 62, 40)
CYPRESS_BROWN = (70, 50, 30)
HILL_BLUE = (28, 48, 95)
HILL_GREEN = (35, 75, 80)

SKY_COLOURS = [DEEP_BLUE, ULTRAMARINE, COBALT, COBALT, CERULEAN, CERULEAN,
               SKY_LIGHT, PALE, TEAL]
SWIRL_COLOURS = [SKY_LIGHT, PALE, CERULEAN, CREAM, COBALT]
HILL_COLOURS = [HILL_BLUE, HILL_GREEN, DEEP_BLUE, ULTRAMARINE, TEAL]
CYPRESS_COLOURS = [CYPRESS_DARK, CYPRESS_DARK, CYPRESS_GREEN, CYPRESS_BROWN]
STAR_COLOURS = [YELLOW, GOLD, CREAM, CREAM, ORANGE]


class Painter:
    """Draws bristle-textured strokes on an RGB canvas of side ``size``."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.s = size / 512.0  # scale factor; all lengths are tuned for 512 px
        self.rng = np.random.default_rng(seed)
        self.img = Image.new("RGB", (size, size), DEEP_BLUE)
        self.draw = ImageDraw.Draw(self.img, "RGBA")  # RGBA mode => alpha blending
        self.horizon = 0.74 * size
        # Swirls: (cx, cy, radius, strength); positive strength = counter-clockwise.
        s = self.s
        self.vortices = [
            (300 * s, 170 * s, 95 * s, 2.2),
            (170 * s, 120 * s, 60 * s, -1.8),
            (430 * s, 90 * s, 55 * s, 1.6),
            (90 * s, 230 * s, 50 * s, 1.4),
        ]
        # Stars: (cx, cy, radius); the first entry is the moon.
        self.stars = [
            (455 * s, 60 * s, 34 * s),
            (60 * s, 70 * s, 20 * s),
            (230 * s, 40 * s, 16 * s),
            (370 * s, 250 * s, 18 * s),
            (120 * s, 300 * s, 14 * s),
            (470 * s, 230 * s, 15 * s),
            (340 * s, 60 * s, 12 * s),
        ]

    # ------------------------------------------------------------------ helpers
    def jitter(self, colour, amount=18):
        r, g, b = (int(np.clip(c + self.rng.normal(0, amount), 0, 255)) for c in colour)
        return r, g, b

    def flow(self, x: float, y: float) -> tuple[float, float]:
        """Unit direction of the swirling sky flow field at (x, y)."""
        s = self.s
        vx = 1.0
        vy = 0.45 * math.sin(x / (55 * s) + y / (90 * s)) + 0.15 * math.sin(y / (23 * s))
        for cx, cy, r, k in self.vortices:
            dx, dy = x - cx, y - cy
            d2 = dx * dx + dy * dy
            w = k * math.exp(-d2 / (r * r)) * 3.0
            d = math.sqrt(d2) + 1e-6
            vx += w * (-dy / d)
            vy += w * (dx / d)
        n = math.hypot(vx, vy) + 1e-9
        return vx / n, vy / n

    def trace(self, x, y, length, step, field):
        pts = [(x, y)]
        for _ in range(int(length / step)):
            dx, dy = field(x, y)
            x += dx * step
            y += dy * step
            pts.append((x, y))
        return pts

    def stroke(self, pts, colour, width, alpha, bristles=None, jitter=16):
        """Draw a stroke along ``pts`` as several parallel jittered bristles."""
        if len(pts) < 2:
            return
        if bristles is None:
            bristles = max(3, int(width / 1.6))
        arr = np.asarray(pts, dtype=float)
        d = np.gradient(arr, axis=0)
        d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
        normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
        base = self.jitter(colour, 10)
        for i in range(bristles):
            off = (i / max(1, bristles - 1) - 0.5) * width + self.rng.normal(0, 0.4)
            # bristles start/stop at slightly different points -> ragged ends
            a = int(self.rng.integers(0, max(1, len(pts) // 6)))
            b = len(pts) - int(self.rng.integers(0, max(1, len(pts) // 6)))
            line = arr[a:b] + normal[a:b] * off
            if len(line) < 2:
                continue
            col = self.jitter(base, jitter)
            al = int(np.clip(alpha + self.rng.normal(0, 25), 40, 255))
            lw = max(1, int(round(self.rng.uniform(1.0, 2.6) * self.s)))
            self.draw.line([tuple(p) for p in line], fill=col + (al,), width=lw, joint="curve")

    def near_star(self, x, y):
        best = None
        for cx, cy, r in self.stars:
            d = math.hypot(x - cx, y - cy) / r
            if best is None or d < best:
                best = d
        return best

    # ------------------------------------------------------------------ layers
    def paint_background(self):
        """Vertical gradient underpainting so no canvas shows through."""
        h = self.size
        y = np.linspace(0, 1, h)[:, None, None]
        top = np.array(DEEP_BLUE, float)
        mid = np.array(COBALT, float)
        bot = np.array(HILL_BLUE, float)
        grad = np.where(y < 0.5, top + (mid - top) * (y / 0.5), mid + (bot - mid) * ((y - 0.5) / 0.5))
        grad = np.broadcast_to(grad, (h, h, 3))
        self.img.paste(Image.fromarray(grad.astype(np.uint8), "RGB"))

    def paint_sky(self, n, width_range, length_range, alpha, colours):
        s = self.s
        for _ in range(n):
            x = self.rng.uniform(-20 * s, self.size)
            y = self.rng.uniform(-10 * s, self.horizon + 10 * s)
            length = self.rng.uniform(*length_range) * s
            pts = self.trace(x, y, length, 3 * s, self.flow)
            ns = self.near_star(x, y)
            if ns < 2.2 and self.rng.random() < 0.7:
                colour = STAR_COLOURS[self.rng.integers(len(STAR_COLOURS))]
            else:
                colour = colours[self.rng.integers(len(colours))]
            width = self.rng.uniform(*width_range) * s
            self.stroke(pts, colour, width, alpha)

    def paint_swirl_rings(self):
        """Bright, thick spiral strokes emphasising the main vortices."""
        for cx, cy, r, k in self.vortices:
            for j in range(10):
                rr = r * (0.25 + 0.09 * j)
                start = self.rng.uniform(0, 2 * math.pi)
                span = self.rng.uniform(1.2, 2.4) * math.pi
                sign = 1 if k > 0 else -1
                steps = 40
                pts = [
                    (cx + (rr + 4 * self.s * t) * math.cos(start + sign * span * t),
                     cy + (rr + 4 * self.s * t) * math.sin(start + sign * span * t))
                    for t in np.linspace(0, 1, steps)
                ]
                colour = SWIRL_COLOURS[self.rng.integers(len(SWIRL_COLOURS))]
                self.stroke(pts, colour, self.rng.uniform(5, 9) * self.s, 150)

    def paint_stars(self):
        for idx, (cx, cy, r) in enumerate(self.stars):
            # halo: concentric rings of short arcs
            rings = 9 if idx == 0 else 6
            for j in range(rings, 0, -1):
                rr = r * (0.25 + 0.28 * j)
                arcs = max(3, int(rr / (6 * self.s)))
                for a in range(arcs):
                    t0 = 2 * math.pi * a / arcs + self.rng.uniform(-0.3, 0.3)
                    t1 = t0 + 2 * math.pi / arcs * self.rng.uniform(0.8, 1.3)
                    pts = [(cx + rr * math.cos(t), cy + rr * math.sin(t))
                           for t in np.linspace(t0, t1, 12)]
                    if j > rings * 0.6:
                        colour = [CERULEAN, SKY_LIGHT, GOLD, PALE][self.rng.integers(4)]
                    else:
                        colour = STAR_COLOURS[self.rng.integers(len(STAR_COLOURS))]
                    self.stroke(pts, colour, self.rng.uniform(4, 7) * self.s, 170)
            # bright core
            cr = r * 0.45
            self.draw.ellipse([cx - cr, cy - cr, cx + cr, cy + cr], fill=CREAM + (235,))
            if idx == 0:
                # moon: offset orange disc over the cream core
                off = cr * 0.55
                self.draw.ellipse([cx - cr + off, cy - cr - off * 0.4, cx + cr + off, cy + cr - off * 0.4],
                                  fill=ORANGE + (200,))

    def paint_hills(self):
        s, h = self.s, self.horizon

        def hill_y(x):
            return h + 18 * s * math.sin(x / (70 * s) + 0.6) + 10 * s * math.sin(x / (31 * s))

        def hill_flow(x, y):
            # follow the hill contours, flattening with depth
            dx = 1.0
            dy = (hill_y(x + 1) - hill_y(x)) * max(0.0, 1 - (y - h) / (self.size - h + 1))
            n = math.hypot(dx, dy)
            return dx / n, dy / n

        # solid silhouette first so the sky doesn't show through
        poly = [(x, hill_y(x)) for x in np.linspace(0, self.size, 80)]
        poly += [(self.size, self.size), (0, self.size)]
        self.draw.polygon(poly, fill=HILL_BLUE + (255,))
        for _ in range(int(900 * s * s)):
            x = self.rng.uniform(-30 * s, self.size)
            y0 = hill_y(x)
            y = self.rng.uniform(y0, self.size + 5 * s)
            pts = self.trace(x, y, self.rng.uniform(25, 70) * s, 3 * s, hill_flow)
            colour = HILL_COLOURS[self.rng.integers(len(HILL_COLOURS))]
            self.stroke(pts, colour, self.rng.uniform(4, 9) * s, 170)
        # village lights
        for _ in range(int(40 * s * s)):
            x = self.rng.uniform(160 * s, 470 * s)
            y = self.rng.uniform(hill_y(x) + 12 * s, self.size - 25 * s)
            w = self.rng.uniform(3, 6) * s
            self.stroke([(x, y), (x + w, y + self.rng.uniform(-1, 1) * s)],
                        STAR_COLOURS[self.rng.integers(len(STAR_COLOURS))], 3 * s, 220, bristles=3)

    def paint_cypress(self):
        """A dark flame-shaped tree on the left, built from wavy upward strokes."""
        s = self.s
        base_x, base_y, top_y = 95 * s, self.size + 10 * s, 100 * s
        height = base_y - top_y

        def half_width(y):
            t = (base_y - y) / height  # 0 at base, 1 at top
            return (48 * s * (1 - t) ** 1.3 * (0.6 + 0.4 * math.sin(t * 9.0) ** 2)
                    + 3 * s * (1 - t))

        def centre(y):
            t = (base_y - y) / height
            return base_x + 14 * s * math.sin(t * 5.5)

        for _ in range(int(700 * s * s)):
            y = self.rng.uniform(top_y + 4 * s, base_y)
            x = centre(y) + self.rng.uniform(-1, 1) * half_width(y)
            pts = []
            phase = self.rng.uniform(0, 2 * math.pi)
            length = self.rng.uniform(30, 80) * s
            for k in range(int(length / (3 * s))):
                yy = y - k * 3 * s
                if yy < top_y:
                    break
                # strokes curl around the trunk like flames
                xx = x + 6 * s * math.sin(k * 0.25 + phase)
                lim = half_width(yy)
                xx = centre(yy) + max(-lim, min(lim, xx - centre(yy)))
                pts.append((xx, yy))
            colour = CYPRESS_COLOURS[self.rng.integers(len(CYPRESS_COLOURS))]
            t = (base_y - y) / height
            self.stroke(pts, colour, self.rng.uniform(4, 8) * s * (1 - 0.6 * t), 210, jitter=7)

    def soften(self):
        """Blend the bristles slightly, like wet paint (also keeps the JPEG small)."""
        self.img = self.img.filter(ImageFilter.GaussianBlur(radius=0.7 * self.s))

    def paint(self) -> Image.Image:
        s = self.s
        self.paint_background()
        # sky: broad underpainting strokes, then medium, then fine highlights
        self.paint_sky(int(900 * s * s), (8, 14), (40, 90), 150, SKY_COLOURS)
        self.paint_sky(int(1500 * s * s), (5, 9), (30, 70), 170, SKY_COLOURS)
        self.paint_swirl_rings()
        self.paint_sky(int(700 * s * s), (3, 6), (20, 45), 190, SWIRL_COLOURS + SKY_COLOURS)
        self.paint_stars()
        self.paint_hills()
        self.paint_cypress()
        self.soften()
        return self.img


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=here / "style.jpg")
    ap.add_argument("--size", type=int, default=512, help="side length in pixels (square)")
    ap.add_argument("--seed", type=int, default=1889)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality")
    args = ap.parse_args()

    img = Painter(args.size, args.seed).paint()
    img.save(args.output, quality=args.quality, optimize=True)
    print(f"wrote {args.output} ({img.size[0]}x{img.size[1]})")


if __name__ == "__main__":
    main()
