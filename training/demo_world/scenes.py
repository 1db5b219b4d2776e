"""Procedural scenes of the demo world: small RGB images with known content and 5 captions each.

Why: the demo world needs stimuli whose content is known exactly, so that the virtual subject
can respond to it and the ROI analysis can be checked against a ground truth. Every image has
one *place* background (room, street, field, beach) and one *category* that maps onto a
category-selective cortical area:

=========  =====================================================  ===================
category   what is drawn                                          cortical area
=========  =====================================================  ===================
face       cartoon face(s): coloured oval, eyes, brows, smile     floc-faces
person     blocky figure(s): head, coloured shirt, arms, legs     floc-bodies
animal     dog (standing), cat (sitting), bird (beak, wing)       (bodies/faces weakly)
sign       coloured board on a pole with STOP/EXIT/OPEN/SALE      floc-words
place      empty scene with one landmark (house, barn, umbrella,  floc-places
           couch) in the colour of the scene
=========  =====================================================  ===================

Low-level variety: object colour (10 names), global contrast (high/low), horizontal position
(left/middle/right), size (small/large) and count (one/two; pairs are always small).

Captions come from a small grammar with COCO-like wording. The 5 references of one image use 5
different templates, and every one of them names the key content (colour, category noun, place)
so that a tiny captioner can learn them and METEOR against the 5 references rewards getting the
content right. One of the five captions of a place scene names its category too ("a photo of an
empty place with a red house on a street"). Why: the category word of every other category is
its caption noun (face, person, sign), but a place scene's captions only named the landmark and
the background, so the retrieval model never learned the word "place", and every query for the
place category ("a photo of a house") was scored by the background the landmark always comes
with (issue 11). Vocabulary: about 70 words (``vocabulary(scenes)``).

Drawing is done with PIL at 4x resolution and box-downsampled, letters with a 5x7 pixel font
defined here. Everything is seeded: ``generate_scenes(n, seed)`` returns the same images, captions
and attributes on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = ("face", "person", "animal", "sign", "place")
PLACES = ("room", "street", "field", "beach")
ANIMALS = ("dog", "cat", "bird")
WORDS = ("stop", "exit", "open", "sale")
POSITIONS = ("left", "middle", "right")
SIZES = ("small", "large")
CONTRASTS = ("high", "low")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 30), "blue": (35, 75, 225), "green": (30, 150, 45), "yellow": (245, 215, 35),
    "orange": (245, 130, 25), "purple": (135, 45, 175), "pink": (245, 125, 185), "white": (245, 245, 245),
    "black": (25, 25, 25), "brown": (125, 75, 35),
}
#: the landmark of each place in images of the "place" category
LANDMARKS = {"street": "house", "field": "barn", "beach": "umbrella", "room": "couch"}
#: every kind of object drawn (the category nouns of the captions)
KINDS = ("face", "person", *ANIMALS, "sign", *LANDMARKS.values())
SPLIT_SIZES = {
    "full": {"train": 2000, "val": 200, "test": 300},
    "small": {"train": 400, "val": 60, "test": 60},
}
SUPERSAMPLE = 4

# 5x7 pixel font for the sign words ("#" = ink)
FONT = {
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "),
    "O": (" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
    "E": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "I": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "#####"),
    "N": ("#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #"),
    "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
}


@dataclass
class SceneSet:
    """Images (n, size, size, 3) uint8, 5 captions per image, and the ground-truth attributes.

    ``attributes[i]`` keys: category, kind (face/person/dog/cat/bird/sign/house/barn/umbrella/
    couch), place, colour, position, size, count, contrast, text (the sign's word or None).
    """

    images: np.ndarray
    captions: list[list[str]]
    attributes: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> "SceneSet":
        index = np.asarray(index, dtype=np.int64)
        return SceneSet(self.images[index], [self.captions[i] for i in index], [self.attributes[i] for i in index])


def generate_scenes(n: int, seed: int, size: int = 64, first: int = 0) -> SceneSet:
    """Scenes ``first .. first + n - 1``, each drawn from its own stream ``(seed, i)`` so prefixes agree across ``n``."""
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    captions, attributes = [], []
    for out, i in enumerate(range(first, first + n)):
        rng = np.random.default_rng([seed, i])
        attrs = sample_attributes(rng)
        images[out] = draw_scene(attrs, rng, size)
        captions.append(describe(attrs, rng))
        attributes.append(attrs)
    return SceneSet(images, captions, attributes)


def split_scenes(seed: int, size: str = "full") -> dict[str, SceneSet]:
    """Disjoint train / val / test scene sets (``SPLIT_SIZES[size]``), split by image."""
    counts = SPLIT_SIZES[size]
    scenes = generate_scenes(sum(counts.values()), seed)
    out, start = {}, 0
    for name, count in counts.items():
        out[name] = scenes.subset(np.arange(start, start + count))
        start += count
    return out


def scenes_after_splits(n: int, seed: int, size: str = "full") -> SceneSet:
    """``n`` scenes that follow the splits of ``split_scenes(seed, size)`` in the same seeded stream.

    Disjoint from train, validation and test by construction; the image encoder of the tiny
    vision-language models is pre-trained on them together with the training split.
    """
    return generate_scenes(n, seed, first=sum(SPLIT_SIZES[size].values()))


def sample_attributes(rng: np.random.Generator) -> dict:
    category = str(rng.choice(CATEGORIES))
    place = str(rng.choice(PLACES))
    count = 2 if category != "place" and rng.random() < 0.25 else 1
    kind = {"face": "face", "person": "person", "sign": "sign", "animal": str(rng.choice(ANIMALS)),
            "place": LANDMARKS[place]}[category]
    return {
        "category": category, "kind": kind, "place": place, "colour": str(rng.choice(list(COLOURS))),
        "position": "middle" if count == 2 else str(rng.choice(POSITIONS)),
        "size": "small" if count == 2 else str(rng.choice(SIZES)), "count": count,
        "contrast": str(rng.choice(CONTRASTS, p=[0.7, 0.3])),
        "text": str(rng.choice(WORDS)) if category == "sign" else None,
    }


# ---------------------------------------------------------------------------------------------
# drawing (coordinates in 64-px units, scaled by the canvas)


class _Canvas:
    """PIL drawing in 64-px units on a supersampled canvas."""

    def __init__(self, size: int):
        self.size = size
        self.unit = size * SUPERSAMPLE / 64.0
        self.image = Image.new("RGB", (size * SUPERSAMPLE,) * 2)
        self.draw = ImageDraw.Draw(self.image)

    def _xy(self, box):
        return [v * self.unit for v in box]

    def rect(self, box, fill, outline=None, width=0.0):
        self.draw.rectangle(self._xy(box), fill=fill, outline=outline, width=max(1, round(width * self.unit)))

    def ellipse(self, box, fill, outline=None, width=0.0):
        self.draw.ellipse(self._xy(box), fill=fill, outline=outline, width=max(1, round(width * self.unit)))

    def polygon(self, points, fill):
        self.draw.polygon([(x * self.unit, y * self.unit) for x, y in points], fill=fill)

    def line(self, points, fill, width):
        self.draw.line([(x * self.unit, y * self.unit) for x, y in points], fill=fill,
                       width=max(1, round(width * self.unit)))

    def arc(self, box, start, end, fill, width):
        self.draw.arc(self._xy(box), start, end, fill=fill, width=max(1, round(width * self.unit)))

    def result(self) -> np.ndarray:
        return np.asarray(self.image.resize((self.size, self.size), Image.Resampling.BOX))


def _jitter(rgb, rng, amount=12):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _shade(rgb, factor):
    return tuple(int(np.clip(c * factor, 0, 255)) for c in rgb)


def draw_scene(attrs: dict, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    canvas = _Canvas(size)
    ground = _draw_background(canvas, attrs["place"], rng)
    colour = _jitter(COLOURS[attrs["colour"]], rng, 10)
    scale = 1.0 if attrs["size"] == "large" else 0.55
    if attrs["count"] == 2:
        centres = [16.0 + rng.uniform(-2, 2), 48.0 + rng.uniform(-2, 2)]
    else:
        centres = [{"left": 18.0, "middle": 32.0, "right": 46.0}[attrs["position"]] + rng.uniform(-3, 3)]
    # large objects stand in the foreground so that they fit in the frame
    base = max(ground + rng.uniform(2, 6), rng.uniform(50, 56)) if scale == 1.0 else ground + rng.uniform(2, 10)
    for cx in centres:
        _DRAW[attrs["kind"]](canvas, cx, min(base, 61.0), scale, colour, attrs, rng)
    image = canvas.result().astype(np.float32)
    if attrs["contrast"] == "low":
        image = image.mean() + 0.45 * (image - image.mean())
    image += rng.normal(0, 3.0, image.shape)  # mild sensor noise
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw_background(c: _Canvas, place: str, rng) -> float:
    """Draw the place; return the y of the ground line where objects stand."""
    horizon = rng.uniform(26, 34)
    sky = _jitter((135, 190, 235), rng)
    if place == "room":
        c.rect((0, 0, 64, horizon + 6), _jitter((222, 205, 172), rng))
        c.rect((0, horizon + 6, 64, 64), _jitter((140, 98, 58), rng))
        for y in np.arange(horizon + 10, 64, 6):  # floor boards
            c.line([(0, y), (64, y)], _jitter((115, 80, 45), rng), 0.6)
        wx = rng.uniform(6, 40)
        c.rect((wx, 6, wx + 18, 22), (170, 215, 245), outline=(250, 250, 250), width=1.5)
        c.line([(wx + 9, 6), (wx + 9, 22)], (250, 250, 250), 1.2)
        c.line([(wx, 14), (wx + 18, 14)], (250, 250, 250), 1.2)
        return horizon + 6 + rng.uniform(4, 10)
    c.rect((0, 0, 64, horizon), sky)
    if place == "street":
        x = -2.0
        while x < 64:  # buildings on the far side
            w, h = rng.uniform(9, 16), rng.uniform(10, 22)
            wall = _jitter(((150, 150, 155), (170, 120, 95), (190, 175, 150))[rng.integers(3)], rng)
            c.rect((x, horizon - h, x + w, horizon), wall)
            for wy in np.arange(horizon - h + 3, horizon - 3, 5):
                for wxx in np.arange(x + 2, x + w - 3, 4):
                    c.rect((wxx, wy, wxx + 2, wy + 2), (60, 70, 90))
            x += w + rng.uniform(0, 2)
        c.rect((0, horizon, 64, horizon + 5), _jitter((175, 175, 175), rng))  # sidewalk
        c.rect((0, horizon + 5, 64, 64), _jitter((75, 75, 80), rng))  # road
        lane = horizon + 5 + (64 - horizon - 5) * 0.6
        for x in np.arange(rng.uniform(-6, 0), 64, 12):
            c.rect((x, lane, x + 6, lane + 1.5), (240, 240, 240))
        return horizon + 4
    if place == "field":
        c.ellipse((48, 4, 58, 14), (250, 225, 90))  # sun
        for x in np.arange(-4, 68, 7):  # distant trees
            r = rng.uniform(3, 5)
            c.ellipse((x - r, horizon - 2 * r + 1, x + r, horizon + 1), _jitter((35, 95, 40), rng))
        c.rect((0, horizon, 64, 64), _jitter((85, 165, 60), rng))
        for y in np.arange(horizon + 4, 64, 5):
            c.line([(0, y), (64, y + rng.uniform(-1, 1))], _jitter((70, 145, 50), rng), 0.8)
        return horizon + rng.uniform(6, 14)
    # beach
    sea_end = horizon + rng.uniform(7, 10)
    c.rect((0, horizon, 64, sea_end), _jitter((30, 95, 175), rng))
    for x in np.arange(rng.uniform(-8, 0), 64, 10):
        c.line([(x, sea_end - 2), (x + 5, sea_end - 2)], (235, 245, 250), 0.8)
    c.rect((0, sea_end, 64, 64), _jitter((232, 212, 150), rng))
    return sea_end + rng.uniform(5, 14)


SKIN = ((240, 200, 160), (205, 150, 105), (150, 100, 65))


def _face(c: _Canvas, cx, base, s, colour, attrs, rng):
    rx, ry = 13 * s, 16 * s
    cy = min(base - ry - 2, 34) if s == 1.0 else base - ry - 8
    cy = max(cy, ry + 1)
    c.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), colour, outline=_shade(colour, 0.55), width=1.2 * s)
    eye_y, dx = cy - 4 * s, 5 * s
    for ex in (cx - dx, cx + dx):
        c.ellipse((ex - 2.6 * s, eye_y - 2.6 * s, ex + 2.6 * s, eye_y + 2.6 * s), (250, 250, 250))
        c.ellipse((ex - 1.4 * s, eye_y - 1.4 * s, ex + 1.4 * s, eye_y + 1.4 * s), (20, 20, 20))
        c.line([(ex - 3 * s, eye_y - 4.5 * s), (ex + 3 * s, eye_y - 5 * s)], (40, 30, 20), 1.0 * s)
    c.line([(cx, cy - 1 * s), (cx - 1.2 * s, cy + 3 * s)], _shade(colour, 0.6), 0.9 * s)
    c.arc((cx - 7 * s, cy - 2 * s, cx + 7 * s, cy + 10 * s), 20, 160, (120, 20, 30), 1.8 * s)


def _person(c: _Canvas, cx, base, s, colour, attrs, rng):
    h = 42 * s
    top = base - h
    skin = SKIN[rng.integers(len(SKIN))]
    head_r = 4.5 * s
    c.ellipse((cx - head_r, top, cx + head_r, top + 2 * head_r), skin)
    c.rect((cx - head_r, top - 0.5, cx + head_r, top + head_r * 0.6), (50, 35, 25))  # hair
    torso_top, torso_bot = top + 2 * head_r + 1 * s, top + 0.6 * h
    c.rect((cx - 5 * s, torso_top, cx + 5 * s, torso_bot), colour)
    for side in (-1, 1):
        c.line([(cx + side * 5 * s, torso_top + 1 * s), (cx + side * 10 * s, torso_bot)], colour, 2.6 * s)
        c.ellipse((cx + side * 10 * s - 1.5 * s, torso_bot - 1.5 * s, cx + side * 10 * s + 1.5 * s,
                   torso_bot + 1.5 * s), skin)
        c.rect((cx + (side - 1) * 2.2 * s + (0.5 if side > 0 else -0.5) * s, torso_bot,
                cx + (side + 1) * 2.2 * s + (0.5 if side > 0 else -0.5) * s - 0.4 * s, base), (40, 45, 80))


def _dog(c: _Canvas, cx, base, s, colour, attrs, rng):
    dark = _shade(colour, 0.6) if colour != COLOURS["black"] else (70, 70, 70)
    leg_h, body_h, body_w = 9 * s, 10 * s, 26 * s
    body_top = base - leg_h - body_h
    x0 = cx - body_w / 2
    for lx in (x0 + 2 * s, x0 + 6 * s, x0 + body_w - 8 * s, x0 + body_w - 4 * s):
        c.rect((lx, body_top + body_h / 2, lx + 2.5 * s, base), colour)
    c.ellipse((x0, body_top, x0 + body_w, body_top + body_h), colour)
    c.line([(x0 + 1 * s, body_top + 3 * s), (x0 - 5 * s, body_top - 5 * s)], colour, 2.2 * s)  # tail up
    hx, hy = x0 + body_w - 2 * s, body_top - 4 * s
    c.ellipse((hx - 6 * s, hy - 6 * s, hx + 6 * s, hy + 6 * s), colour)
    c.rect((hx + 3 * s, hy - 1 * s, hx + 10 * s, hy + 4 * s), colour)  # snout
    c.ellipse((hx + 8.5 * s, hy - 1 * s, hx + 11 * s, hy + 1.5 * s), (20, 20, 20))  # nose
    c.ellipse((hx - 5 * s, hy - 5 * s, hx - 1 * s, hy + 6 * s), dark)  # floppy ear
    c.ellipse((hx + 1.5 * s, hy - 3 * s, hx + 3.5 * s, hy - 1 * s), (20, 20, 20))


def _cat(c: _Canvas, cx, base, s, colour, attrs, rng):
    body_w, body_h = 16 * s, 20 * s
    c.ellipse((cx - body_w / 2, base - body_h, cx + body_w / 2, base), colour)
    c.arc((cx + 2 * s, base - 18 * s, cx + 16 * s, base + 1 * s), 270, 90, colour, 2.2 * s)  # curled tail
    hr = 7 * s
    hy = base - body_h - hr + 3 * s
    for side in (-1, 1):  # pointed ears
        c.polygon([(cx + side * 1.5 * s, hy - hr + 2 * s), (cx + side * 7 * s, hy - hr - 5 * s),
                   (cx + side * 7.5 * s, hy)], colour)
    c.ellipse((cx - hr, hy - hr, cx + hr, hy + hr), colour)
    eye = (90, 200, 80) if colour != COLOURS["green"] else (250, 230, 60)
    for side in (-1, 1):
        c.ellipse((cx + side * 3 * s - 1.4 * s, hy - 2 * s, cx + side * 3 * s + 1.4 * s, hy + 0.8 * s), eye)
        c.line([(cx + side * 2 * s, hy + 3 * s), (cx + side * 9 * s, hy + 2 * s)], (230, 230, 230)
               if colour == COLOURS["black"] else (30, 30, 30), 0.5 * s)  # whiskers


def _bird(c: _Canvas, cx, base, s, colour, attrs, rng):
    leg_h = 6 * s
    body = (cx - 10 * s, base - leg_h - 14 * s, cx + 8 * s, base - leg_h)
    for lx in (cx - 3 * s, cx + 1 * s):
        c.line([(lx, base - leg_h - 1), (lx, base)], (230, 140, 30), 1.0 * s)
    c.polygon([(cx - 9 * s, base - leg_h - 8 * s), (cx - 17 * s, base - leg_h - 14 * s),
               (cx - 16 * s, base - leg_h - 4 * s)], _shade(colour, 0.7))  # tail
    c.ellipse(body, colour)
    hx, hy, hr = cx + 7 * s, base - leg_h - 16 * s, 5.5 * s
    c.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), colour)
    c.polygon([(hx + hr - 1 * s, hy - 2 * s), (hx + hr + 7 * s, hy + 0.5 * s), (hx + hr - 1 * s, hy + 2.5 * s)],
              (250, 160, 20))  # beak
    c.ellipse((hx + 0.5 * s, hy - 2.5 * s, hx + 3 * s, hy), (15, 15, 15))
    wing = _shade(colour, 0.6) if colour != COLOURS["black"] else (90, 90, 90)
    c.polygon([(cx - 6 * s, base - leg_h - 10 * s), (cx + 5 * s, base - leg_h - 9 * s),
               (cx - 4 * s, base - leg_h - 2 * s)], wing)


def _sign(c: _Canvas, cx, base, s, colour, attrs, rng):
    pixel = 2.0 if s == 1.0 else 1.0
    word = attrs["text"].upper()
    text_w, text_h = (len(word) * 6 - 1) * pixel, 7 * pixel
    pad = 2.5 * pixel
    board_w, board_h = text_w + 2 * pad, text_h + 2 * pad
    cx = float(np.clip(cx, board_w / 2 + 1, 63 - board_w / 2))  # keep the word readable
    board_bot = base - (16 if s == 1.0 else 10)
    board_top = board_bot - board_h
    c.rect((cx - 1.2 * pixel, board_bot, cx + 1.2 * pixel, base), (120, 120, 125))  # pole
    c.rect((cx - board_w / 2, board_top, cx + board_w / 2, board_bot), colour,
           outline=(235, 235, 235) if sum(colour) < 600 else (60, 60, 60), width=0.8 * pixel)
    ink = (20, 20, 20) if attrs["colour"] in ("white", "yellow", "pink", "orange") else (250, 250, 250)
    x = cx - text_w / 2
    for letter in word:
        for row, bits in enumerate(FONT[letter]):
            for col, bit in enumerate(bits):
                if bit == "#":
                    px, py = x + col * pixel, board_top + pad + row * pixel
                    c.rect((px, py, px + pixel - 0.01, py + pixel - 0.01), ink)
        x += 6 * pixel


def _house(c: _Canvas, cx, base, s, colour, attrs, rng):
    w, h = 26 * s, 18 * s
    x0, top = cx - w / 2, base - h
    c.rect((x0, top, x0 + w, base), colour)
    c.polygon([(x0 - 3 * s, top), (cx, top - 12 * s), (x0 + w + 3 * s, top)], (80, 50, 45))
    c.rect((cx - 3 * s, base - 10 * s, cx + 3 * s, base), (90, 60, 35))
    for wx in (x0 + 3 * s, x0 + w - 8 * s):
        c.rect((wx, top + 3 * s, wx + 5 * s, top + 8 * s), (170, 215, 245), outline=(250, 250, 250), width=0.6 * s)


def _barn(c: _Canvas, cx, base, s, colour, attrs, rng):
    w, h = 28 * s, 16 * s
    x0, top = cx - w / 2, base - h
    c.polygon([(x0, top), (x0 + 4 * s, top - 8 * s), (cx, top - 11 * s), (x0 + w - 4 * s, top - 8 * s),
               (x0 + w, top), (x0 + w, base), (x0, base)], colour)
    c.line([(x0, top), (x0 + 4 * s, top - 8 * s), (cx, top - 11 * s), (x0 + w - 4 * s, top - 8 * s),
            (x0 + w, top)], (240, 240, 240), 1.2 * s)
    door = (cx - 6 * s, base - 12 * s, cx + 6 * s, base)
    c.rect(door, _shade(colour, 0.6), outline=(240, 240, 240), width=1.0 * s)
    c.line([(door[0], door[1]), (door[2], door[3])], (240, 240, 240), 1.0 * s)
    c.line([(door[0], door[3]), (door[2], door[1])], (240, 240, 240), 1.0 * s)


def _umbrella(c: _Canvas, cx, base, s, colour, attrs, rng):
    top = base - 30 * s
    c.line([(cx, top + 4 * s), (cx, base)], (235, 235, 235), 1.4 * s)
    c.draw.pieslice(c._xy((cx - 16 * s, top, cx + 16 * s, top + 16 * s)), 180, 360, fill=colour)
    for x in (cx - 8 * s, cx + 8 * s):
        c.line([(cx, top), (x, top + 8 * s)], _shade(colour, 0.7) if colour != COLOURS["black"] else (90,) * 3,
               0.8 * s)
    c.rect((cx - 16 * s, base - 2 * s, cx - 2 * s, base), (250, 250, 250))  # towel


def _couch(c: _Canvas, cx, base, s, colour, attrs, rng):
    w = 34 * s
    x0 = cx - w / 2
    dark = _shade(colour, 0.7) if colour != COLOURS["black"] else (70, 70, 70)
    c.rect((x0 + 3 * s, base - 20 * s, x0 + w - 3 * s, base - 9 * s), dark)  # back
    c.rect((x0 + 3 * s, base - 10 * s, x0 + w - 3 * s, base - 3 * s), colour)  # seat
    for ax in (x0, x0 + w - 5 * s):
        c.rect((ax, base - 14 * s, ax + 5 * s, base - 3 * s), colour)  # arms
    for lx in (x0 + 1 * s, x0 + w - 3 * s):
        c.rect((lx, base - 3 * s, lx + 2 * s, base), (50, 35, 20))


_DRAW = {"face": _face, "person": _person, "dog": _dog, "cat": _cat, "bird": _bird, "sign": _sign,
         "house": _house, "barn": _barn, "umbrella": _umbrella, "couch": _couch}


# ---------------------------------------------------------------------------------------------
# captions

_PLACE_PHRASES = {
    "room": ("in a room", "inside a room", "in a living room"),
    "street": ("on a street", "on a city street", "on the street"),
    "field": ("in a field", "in a green field", "in a grassy field"),
    "beach": ("on a beach", "on the beach", "on a sandy beach"),
}
_PLACE_NOUNS = {"room": ("room", "living room"), "street": ("street", "city street"),
                "field": ("field", "grassy field"), "beach": ("beach", "sandy beach")}
_VERBS = {"person": "standing", "dog": "standing", "cat": "sitting", "bird": "standing", "sign": "standing"}
_POSITION_PHRASES = {"left": "on the left", "right": "on the right", "middle": "in the middle"}


def _pick(rng, options):
    return options[rng.integers(len(options))]


def _object_phrase(attrs, rng, with_size: bool = False) -> str:
    """'a red dog' / 'two small red dogs' / 'a red sign that says stop' ..."""
    colour, kind, two = attrs["colour"], attrs["kind"], attrs["count"] == 2
    size = f"{attrs['size']} " if with_size else ""
    det = "two " if two else ("an " if (size or colour)[0] in "aeiou" else "a ")
    if kind == "face":
        noun = _pick(rng, ("smiley face", "cartoon face", "smiling face"))
        return f"{det}{size}{colour} {noun}{'s' if two else ''}"
    if kind == "person":
        if two:
            return f"two {size}people {_pick(rng, ('in', 'wearing'))} {colour} shirts"
        return f"{det}{size}{_pick(rng, ('person', 'man'))} {_pick(rng, ('in', 'wearing'))} a {colour} shirt"
    if kind == "sign":
        word = attrs["text"]
        if two:
            return _pick(rng, (f"two {size}{colour} signs that say {word}", f"two {size}{colour} {word} signs"))
        return _pick(rng, (f"{det}{size}{colour} sign that says {word}", f"{det}{size}{colour} {word} sign"))
    return f"{det}{size}{colour} {kind}{'s' if two else ''}"  # animals and landmarks


def describe(attrs: dict, rng: np.random.Generator) -> list[str]:
    """Five paraphrases, one per template; all name the colour, the category noun and the place."""
    place = attrs["place"]
    obj = _object_phrase(attrs, rng)
    where = _pick(rng, _PLACE_PHRASES[place])
    pos = _POSITION_PHRASES[attrs["position"]]
    if attrs["category"] == "place":
        noun = _pick(rng, _PLACE_NOUNS[place])
        return [
            f"an empty {noun} with {obj}",
            f"{obj} {_pick(rng, _PLACE_PHRASES[place])}",
            f"{_object_phrase(attrs, rng, with_size=True)} {_pick(rng, _PLACE_PHRASES[place])}",
            f"a {_pick(rng, _PLACE_NOUNS[place])} with {_object_phrase(attrs, rng)} {pos}",
            f"{_pick(rng, ('a photo of', 'a view of'))} an empty place with {_object_phrase(attrs, rng)} "
            f"{_pick(rng, _PLACE_PHRASES[place])}",
        ]
    verb = _VERBS.get(attrs["kind"])
    where2 = _pick(rng, _PLACE_PHRASES[place])
    scene_noun = _pick(rng, _PLACE_NOUNS[place])
    return [
        f"{obj} {where}",
        (f"a close up of {_object_phrase(attrs, rng)} {where2}" if verb is None
         else f"{_object_phrase(attrs, rng)} {verb} {where2}"),
        f"{_object_phrase(attrs, rng, with_size=True)} {_pick(rng, _PLACE_PHRASES[place])}",
        f"a {scene_noun} with {_object_phrase(attrs, rng)}" + ("" if attrs["count"] == 2 else f" {pos}"),
        f"{_pick(rng, ('a photo of', 'a picture of'))} {_object_phrase(attrs, rng)} "
        f"{_pick(rng, _PLACE_PHRASES[place])}",
    ]


def vocabulary(scenes: SceneSet) -> set[str]:
    """Distinct words used by the captions of ``scenes``."""
    return {w for caps in scenes.captions for c in caps for w in c.split()}
