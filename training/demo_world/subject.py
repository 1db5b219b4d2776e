"""The virtual subject: a posterior visual cortex on nilearn's fsaverage5 with a known encoding model.

Why: the ROI analysis of the paper can only be checked where the right answer is known. Here the
"voxels" are vertices of a real cortical mesh, the ROIs sit at published locations, and every
voxel's response is a written-down function of the scene, so each ROI's preferred content is
ground truth (see ``README.md`` in this folder).

Anatomy (all on the fsaverage5 pial surface, whose coordinates are MNI305-like, in mm):

- cortex: every vertex of both hemispheres with y < -40 and z < 30 (4,136 vertices: occipital,
  ventral and lateral occipito-temporal cortex). The encoding model runs on these vertices.
- voxels: a regular grid of ``VOXEL_MM`` cubes over the pial surface; a voxel is every grid cell
  that contains such vertices (1,039 at 6 mm), its response the mean of its vertices (partial
  volume, as a real voxel averages the cortex it contains, sometimes both banks of a sulcus).
  Each of those vertices maps to its voxel with weight 1 in ``vertex_voxel``; the rest map to
  nothing. (6 mm rather than NSD's 1.8 mm keeps the two stages' weights, n_query x query_dim x
  n_voxels each, inside the bundle's 30 MB.)
- V1 / V2 / V3: geodesic bands around the calcarine sulcus (a polyline from the occipital pole
  forward, ``CALCARINE``): V1 within 10 mm, V2 10-18 mm, V3 18-25 mm, posterior to y = -60.
  Retinotopy: eccentricity grows from the pole forward, the upper bank (cuneus) maps the lower
  visual field, the lower bank (lingual gyrus) the upper field, each hemisphere the opposite
  hemifield; the V1/V2 border is the vertical meridian, the V2/V3 border the horizontal one.
- hV4, floc-faces, floc-bodies, floc-places, floc-words: geodesic discs (``DISC_RADIUS_MM``)
  around the vertex nearest to the published MNI coordinates in ``AREA_CENTRES`` (sources there);
  a vertex claimed by two discs goes to the nearer centre; early areas win over later ones. A
  voxel belongs to the ROI most of its vertices belong to.

Encoding model (per vertex, the weights are smooth functions of position on the cortex):

- early areas: Gaussian receptive fields on the image (size grows with eccentricity and from V1
  to V3), responding to local edge energy (gradient magnitude) and luminance, plus signed, smooth
  preferences for red-green and blue-yellow opponent colour and horizontal/vertical orientation;
- hV4: a large foveal-contralateral receptive field and a preferred hue (a smooth map over
  hV4), responding to saturated colour of that hue;
- category areas: the presence of their category (faces: faces; bodies: people; places: empty
  scenes with a landmark, plus which place it is; words: signs, plus which word), more for two
  objects and for large ones, more in the contralateral hemifield;
- every voxel also carries a weak, spatially smooth random mixture of the scene's contextual
  attributes (place, colour, position, size, count, word), as distributed ventral-stream codes
  do; which *category* the scene shows is coded by the category areas alone;
- inside the category areas the low-level drives and that mixture fade, by
  (1 - area weight) ** ``AREA_EXCLUSION_POWER``: an area's voxels respond to their category and
  little else. Why: the paper's ROI analysis sums the ridge weights over an ROI, and that sum
  follows whatever the ROI carries that the rest of the cortex does not; with the mixture and
  hV4's colour drive running through the face and body areas, their sums pointed at colour and
  place (README.md, "Ground truth").

Noise: per voxel, signal and noise standard deviations set a noise-ceiling SNR (signal sd /
noise sd, NSD's ``ncsnr``) of 2.0 in area cores down to 0.5 between areas (median 1.16: above
NSD's 1.8 mm voxels, see README.md for why); noise is half independent, half spatially smooth;
each image is seen ``repeats`` times and the repeats are averaged, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from brainview.cortex.surface import Hemisphere
from training.demo_world.scenes import CATEGORIES, COLOURS, PLACES, POSITIONS, WORDS, SceneSet, generate_scenes

HEMIS = ("lh", "rh")
MASK_Y_MAX, MASK_Z_MAX = -40.0, 30.0
VOXEL_MM = 6.0
INFLATED_OFFSET_MM = 45.0  # each inflated hemisphere is centred on x = 0; shift them apart for display

#: calcarine sulcus fundus, occipital pole first (x is mirrored for the left hemisphere)
CALCARINE = np.array([(8.0, -102.0, 2.0), (10.0, -90.0, 4.0), (10.0, -78.0, 6.0), (10.0, -66.0, 10.0)])
EARLY_BANDS_MM = {"V1": (0.0, 10.0), "V2": (10.0, 18.0), "V3": (18.0, 25.0)}
EARLY_Y_MAX = -60.0
DISC_RADIUS_MM = 12.0

#: (ROI, area, hemispheres, MNI x (right hemisphere; mirrored for left), y, z, source)
AREA_CENTRES = (
    ("hV4", "hV4", HEMIS, 30.0, -80.0, -12.0, "Brewer et al. 2005 J Vis; Wandell & Winawer 2011"),
    ("floc-faces", "FFA", ("rh",), 40.0, -55.0, -10.0, "Kanwisher, McDermott & Chun 1997 J Neurosci (right)"),
    ("floc-faces", "lFFA", ("lh",), 35.0, -63.0, -10.0, "Kanwisher, McDermott & Chun 1997 J Neurosci (left)"),
    ("floc-faces", "OFA", HEMIS, 40.0, -78.0, -10.0, "Gauthier et al. 2000; Pitcher et al. 2011"),
    ("floc-bodies", "EBA", HEMIS, 47.0, -71.0, 4.0, "Downing, Jiang, Shuman & Kanwisher 2001 Science"),
    ("floc-places", "PPA", HEMIS, 26.0, -44.0, -8.0, "Epstein & Kanwisher 1998 Nature"),
    ("floc-places", "OPA", HEMIS, 34.0, -80.0, 20.0, "Dilks, Julian, Paunov & Kanwisher 2013 J Neurosci"),
    ("floc-words", "VWFA", ("lh",), 43.0, -54.0, -12.0, "Cohen et al. 2000 Brain (left only)"),
)
ROI_GROUPS = {"V1": "prf-visualrois", "V2": "prf-visualrois", "V3": "prf-visualrois", "hV4": "prf-visualrois",
              "floc-faces": "floc-faces", "floc-bodies": "floc-bodies", "floc-places": "floc-places",
              "floc-words": "floc-words"}
ROI_NAMES = tuple(ROI_GROUPS)

GRID = 32  # feature maps are computed on a 32x32 grid of the image
HUE_BINS = 8
AREA_SIGMA_MM = 9.0  # tuning of category areas falls off with this geodesic sigma around the centres
SNR_FLOOR, SNR_PEAK = 0.5, 2.0
WARM_HUE_SPREAD_DEG = 30.0
LUMINANCE_WEIGHT = 1.0  # relative to edge energy
OPPONENT_WEIGHT = 1.0  # colour-opponent and orientation preferences of early units
MIXTURE_GAIN = 0.35
AREA_EXCLUSION_POWER = 4  # low-level drives and the mixture scale with (1 - category-area weight) ** 4
CATEGORY_GAIN = 1.5
SMOOTH_NOISE_FRACTION = 0.5
EARLY_CHANNELS = ("edges", "luminance", "red_green", "blue_yellow", "orientation")
CATEGORY_AREAS = ("faces", "bodies", "places", "words")


@dataclass(frozen=True)
class SubjectTraits:
    """How one virtual subject differs from the reference one (the defaults: the shipped demo subject).

    Real subjects differ in where an area lies (functional localizers put FFA, EBA, PPA and VWFA
    peaks of different people some 4-8 mm apart around the group coordinate), how large it is, how
    much signal their voxels carry and how strongly each category area responds; voxel sampling also
    differs (the head sits differently in the scanner grid). ``centre_shift_mm``: per area of
    ``AREA_CENTRES`` (FFA, OFA, EBA...) an (x, y, z) shift in right-hemisphere coordinates (mirrored
    for the left); ``size_scale`` multiplies the disc radius and the tuning fall-off; ``snr_scale``
    the noise-ceiling SNR; ``grid_offset_mm`` moves the voxel grid; ``category_gain`` multiplies
    each category area's drive; ``mixture_scale`` the weak distributed code.
    """

    centre_shift_mm: dict = field(default_factory=dict)
    size_scale: float = 1.0
    snr_scale: float = 1.0
    grid_offset_mm: tuple = (0.0, 0.0, 0.0)
    category_gain: dict = field(default_factory=dict)
    mixture_scale: float = 1.0

    @classmethod
    def draw(cls, seed: int, centre_sd_mm: float = 4.0) -> "SubjectTraits":
        """A subject drawn around the reference: shifts N(0, ``centre_sd_mm``) per axis (clipped at 2 sd),
        sizes x0.85-1.2, SNR x0.75-1.15, a random grid offset, category gains x0.8-1.25, mixture x0.8-1.2."""
        rng = np.random.default_rng([seed, 4242])
        areas = sorted({a[1] for a in AREA_CENTRES})
        shifts = {a: tuple(float(v) for v in np.clip(rng.normal(0.0, centre_sd_mm, 3), -2 * centre_sd_mm,
                                                          2 * centre_sd_mm)) for a in areas}
        return cls(centre_shift_mm=shifts, size_scale=float(rng.uniform(0.85, 1.2)),
                   snr_scale=float(rng.uniform(0.75, 1.15)),
                   grid_offset_mm=tuple(float(v) for v in rng.uniform(0.0, VOXEL_MM, 3)),
                   category_gain={k: float(rng.uniform(0.8, 1.25)) for k in CATEGORY_AREAS},
                   mixture_scale=float(rng.uniform(0.8, 1.2)))

    def describe(self) -> dict:
        """The traits as plain JSON (rounded), for a bundle's provenance and the README."""
        return {"centre_shift_mm": {k: [round(x, 1) for x in v] for k, v in self.centre_shift_mm.items()},
                "size_scale": round(self.size_scale, 3), "snr_scale": round(self.snr_scale, 3),
                "grid_offset_mm": [round(x, 2) for x in self.grid_offset_mm],
                "category_gain": {k: round(v, 3) for k, v in self.category_gain.items()},
                "mixture_scale": round(self.mixture_scale, 3)}


def load_fsaverage5() -> dict[str, dict[str, np.ndarray]]:
    """fsaverage5 from the files shipped inside nilearn (no download): pial, inflated, faces, sulc."""
    from nilearn import datasets

    meshes = datasets.load_fsaverage("fsaverage5")
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", mesh_type="pial", data_type="sulcal")
    out = {}
    for hemi, part in zip(HEMIS, ("left", "right")):
        inflated = np.asarray(meshes["inflated"].parts[part].coordinates, dtype=np.float32).copy()
        inflated[:, 0] += -INFLATED_OFFSET_MM if hemi == "lh" else INFLATED_OFFSET_MM
        out[hemi] = {"inflated": inflated,
                     "pial": np.asarray(meshes["pial"].parts[part].coordinates, dtype=np.float32),
                     "faces": np.asarray(meshes["pial"].parts[part].faces, dtype=np.int32),
                     "sulc": np.asarray(sulc.data.parts[part], dtype=np.float32)}
    return out


# ---------------------------------------------------------------------------------------------
# image features


def image_feature_maps(images: np.ndarray) -> dict[str, np.ndarray]:
    """Edge energy, luminance (n, GRID²) and saturation-weighted hue channels (n, HUE_BINS, GRID²)."""
    rgb = np.asarray(images, dtype=np.float32) / 255.0
    n, size = rgb.shape[0], rgb.shape[1]
    gray = rgb.mean(-1)
    gy, gx = np.gradient(gray, axis=(1, 2))
    edges = np.sqrt(gx ** 2 + gy ** 2)
    hi, lo = rgb.max(-1), rgb.min(-1)
    saturation = (hi - lo) * hi / np.maximum(hi, 1e-6)  # chroma weighted by value
    hue = _hue(rgb, hi, lo)
    centres = np.arange(HUE_BINS) * 2 * np.pi / HUE_BINS
    hue_weights = np.exp(2.0 * (np.cos(hue[..., None] - centres) - 1.0)) * saturation[..., None]
    pool = size // GRID

    def downsample(a):
        shape = a.shape
        a = a.reshape(n, GRID, pool, GRID, pool, *shape[3:]).mean(axis=(2, 4))
        return a.reshape(n, GRID * GRID, *shape[3:])

    opponent = {"red_green": rgb[..., 0] - rgb[..., 1], "blue_yellow": rgb[..., 2] - 0.5 * (rgb[..., 0] + rgb[..., 1]),
                "orientation": np.abs(gx) - np.abs(gy)}
    return {"edges": downsample(edges), "luminance": downsample(gray),
            **{k: downsample(v) for k, v in opponent.items()},
            "hue": np.moveaxis(downsample(hue_weights), 2, 1)}


def _hue(rgb, hi, lo):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    delta = np.maximum(hi - lo, 1e-6)
    hue = np.where(hi == r, (g - b) / delta % 6, np.where(hi == g, (b - r) / delta + 2, (r - g) / delta + 4))
    return hue * (np.pi / 3)


def attribute_matrix(scenes: SceneSet) -> np.ndarray:
    """One-hot scene attributes (category, place, colour, position, size, count, word), (n, A)."""
    rows = []
    for a in scenes.attributes:
        row = [a["category"] == c for c in CATEGORIES] + [a["place"] == p for p in PLACES]
        row += [a["colour"] == c for c in COLOURS] + [a["position"] == p for p in POSITIONS]
        row += [a["size"] == "large", a["count"] == 2] + [a["text"] == w for w in WORDS]
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def category_drives(scenes: SceneSet) -> dict[str, np.ndarray]:
    """Drive of each category area per scene (n,), and the horizontal side of the object (-1..1)."""
    n = len(scenes)
    drive = {k: np.zeros(n, dtype=np.float32) for k in ("faces", "bodies", "places", "words")}
    side = np.zeros(n, dtype=np.float32)
    for i, a in enumerate(scenes.attributes):
        gain = (1.0 + 0.25 * (a["count"] == 2)) * (1.0 + 0.2 * (a["size"] == "large"))
        c = a["category"]
        drive["faces"][i] = gain * (c == "face")
        drive["bodies"][i] = gain * (c == "person")
        drive["words"][i] = gain * (c == "sign")
        drive["places"][i] = float(c == "place")
        side[i] = {"left": -1.0, "middle": 0.0, "right": 1.0}[a["position"]]
    return {**drive, "side": side}


# ---------------------------------------------------------------------------------------------
# the subject


@dataclass
class VirtualSubject:
    """A seeded virtual subject; build it with :meth:`create`.

    ``mesh``: {"lh"|"rh": {"inflated", "pial", "faces", "sulc"}} (bundle layout, DESIGN.md §3);
    ``rois``: {name: {"group", "voxels"}}; ``vertex_voxel``: CSR (n_vertices, n_voxels);
    ``respond(scenes, repeats, rng)``: (n, n_voxels) float32, the average of ``repeats`` noisy
    trials per image (not yet z-scored: z-score with the training split's statistics).
    The encoding model runs on cortical *units* (the mask's vertices); a voxel averages its units.
    """

    seed: int
    mesh: dict
    unit_vertices: np.ndarray  # global vertex id (lh first) of each cortical unit
    unit_voxel: np.ndarray  # the voxel each unit lies in
    unit_hemi: np.ndarray  # +1 for lh (prefers the right visual field), -1 for rh
    rois: dict
    tuning: dict  # encoding parameters, see _encoding_tuning
    unit_smoother: sp.csr_matrix  # one step of neighbour averaging among units
    voxel_smoother: sp.csr_matrix  # the same among voxels
    traits: SubjectTraits = field(default_factory=SubjectTraits)

    @property
    def n_voxels(self) -> int:
        return int(self.unit_voxel.max()) + 1

    @cached_property
    def pooling(self) -> sp.csr_matrix:
        """(n_voxels, n_units): the mean over a voxel's units."""
        counts = np.bincount(self.unit_voxel, minlength=self.n_voxels).astype(np.float32)
        return sp.csr_matrix((1.0 / counts[self.unit_voxel], (self.unit_voxel, np.arange(len(self.unit_voxel)))),
                             shape=(self.n_voxels, len(self.unit_voxel)))

    @cached_property
    def voxel_hemi(self) -> np.ndarray:
        return np.sign(self.pooling @ self.unit_hemi).astype(np.float32)  # a voxel lies in one hemisphere

    @cached_property
    def vertex_voxel(self) -> sp.csr_matrix:
        n_vertices = sum(len(self.mesh[h]["pial"]) for h in HEMIS)
        return sp.csr_matrix((np.ones(len(self.unit_vertices), dtype=np.float32), (self.unit_vertices, self.unit_voxel)),
                             shape=(n_vertices, self.n_voxels))

    @classmethod
    def create(cls, seed: int, traits: SubjectTraits | None = None) -> "VirtualSubject":
        traits = traits or SubjectTraits()
        mesh = load_fsaverage5()
        hemis, offset = {}, 0
        for h in HEMIS:
            hemis[h] = Hemisphere(h, mesh[h]["inflated"], mesh[h]["pial"], mesh[h]["faces"], mesh[h]["sulc"], offset)
            offset += len(mesh[h]["pial"])
        geometry = [_hemisphere_geometry(hemis[h], traits) for h in HEMIS]
        unit_vertices = np.concatenate([g["vertices"] + hemis[h].offset for g, h in zip(geometry, HEMIS)])
        fields = {k: np.concatenate([g[k] for g in geometry]) for k in geometry[0] if k != "vertices"}
        unit_hemi = np.concatenate([np.full(len(g["vertices"]), 1.0 if h == "lh" else -1.0)
                                    for g, h in zip(geometry, HEMIS)]).astype(np.float32)
        unit_voxel = _voxel_grid(fields["pial"], unit_hemi, traits.grid_offset_mm)
        unit_smoother = _neighbour_average(sp.block_diag([hemis[h].adjacency for h in HEMIS], format="csr")
                                           [unit_vertices][:, unit_vertices])
        membership = sp.csr_matrix((np.ones(len(unit_voxel)), (unit_voxel, np.arange(len(unit_voxel)))))
        voxel_smoother = _neighbour_average(membership @ unit_smoother @ membership.T)
        subject = cls(seed, mesh, unit_vertices, unit_voxel, unit_hemi, {}, {}, unit_smoother, voxel_smoother, traits)
        subject.rois = _assign_rois(fields, unit_voxel, subject.n_voxels, DISC_RADIUS_MM * traits.size_scale)
        subject.tuning = _encoding_tuning(fields, subject, np.random.default_rng([seed, 101]))
        return subject

    # -- encoding -----------------------------------------------------------------------------

    def signal(self, scenes: SceneSet) -> np.ndarray:
        """Noise-free response (n, n_voxels), each voxel scaled to its signal sd (ncsnr units)."""
        t = self.tuning
        raw = self.raw_signal(scenes)
        return ((raw - t["signal_mean"]) / t["signal_sd"] * t["ncsnr"]).astype(np.float32)

    def respond(self, scenes: SceneSet, repeats: int = 3, rng: np.random.Generator | None = None) -> np.ndarray:
        """Average of ``repeats`` noisy trials per scene, (n, n_voxels) float32 (noise sd 1 per trial)."""
        rng = rng if rng is not None else np.random.default_rng([self.seed, 202])
        signal = self.signal(scenes)
        total = np.zeros_like(signal)
        for _ in range(repeats):
            total += signal + self.noise(len(scenes), rng)
        return (total / repeats).astype(np.float32)

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-variance trial noise, half independent and half spatially smooth."""
        white = rng.standard_normal((n, self.n_voxels)).astype(np.float32)
        smooth = _smooth(rng.standard_normal((n, self.n_voxels)).astype(np.float32).T, self.voxel_smoother, 2).T
        smooth /= self.tuning["smooth_noise_sd"]
        return np.sqrt(1 - SMOOTH_NOISE_FRACTION) * white + np.sqrt(SMOOTH_NOISE_FRACTION) * smooth

    def raw_signal(self, scenes: SceneSet) -> np.ndarray:
        """Unscaled voxel responses (n, n_voxels): the mean of each voxel's units."""
        return np.asarray((self.pooling @ self._unit_signal(scenes).T).T, dtype=np.float32)

    def _unit_signal(self, scenes: SceneSet) -> np.ndarray:
        t = self.tuning
        maps = image_feature_maps(scenes.images)
        early = sum(maps[k] @ t["rf"].T * t[f"w_{k}"] for k in EARLY_CHANNELS)
        colour = _colour_drive(maps["hue"], t["rf"], t["hue_pref"], t["w_colour"])
        drives = category_drives(scenes)
        contra = 1.0 + 0.3 * drives["side"][:, None] * self.unit_hemi[None, :]
        category = sum(drives[k][:, None] * t[f"w_{k}"][None, :] for k in ("faces", "bodies", "places", "words"))
        attributes = attribute_matrix(scenes)
        category = category * contra + attributes @ t["w_identity"]
        mixture = attributes @ t["w_mixture"]
        return early / t["scale_early"] + colour / t["scale_colour"] + category + mixture


def _voxel_grid(pial: np.ndarray, hemi: np.ndarray, offset_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Voxel index of each unit: the ``VOXEL_MM`` grid cell (per hemisphere, grid moved by ``offset_mm``)
    that contains it."""
    cells = np.concatenate([np.floor((pial - np.asarray(offset_mm)) / VOXEL_MM).astype(np.int64), hemi[:, None].astype(np.int64)], axis=1)
    _, voxel = np.unique(cells, axis=0, return_inverse=True)
    return voxel.ravel()


def _smooth(values: np.ndarray, smoother: sp.csr_matrix, steps: int) -> np.ndarray:
    for _ in range(steps):
        values = smoother @ values
    return values


def _colour_drive(hue_maps: np.ndarray, rf: np.ndarray, hue_pref: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Saturated colour of each voxel's preferred hue inside its receptive field, times ``weight``.

    Only voxels with a non-negligible colour weight are computed (the rest stay 0).
    """
    n, bins, pixels = hue_maps.shape
    active = np.flatnonzero(weight > 1e-3)
    per_bin = (hue_maps.reshape(n * bins, pixels) @ rf[active].T).reshape(n, bins, -1)
    out = np.zeros((n, len(weight)), dtype=np.float32)
    out[:, active] = np.einsum("nkv,vk->nv", per_bin, hue_pref[active]) * weight[active]
    return out


def _hemisphere_geometry(hemi: Hemisphere, traits: SubjectTraits) -> dict[str, np.ndarray]:
    """Voxel mask and per-voxel distances that place areas and retinotopy on one hemisphere."""
    pial = hemi.pial.astype(np.float64)
    mirror = -1.0 if hemi.name == "lh" else 1.0
    graph = hemi.edge_graph("pial")
    calcarine = CALCARINE * [mirror, 1, 1]
    # seeds: vertices close to the calcarine polyline, with their position along it (0 = pole)
    segment_distance, along = _polyline_distance(pial, calcarine)
    seeds = np.flatnonzero(segment_distance < 4.0)
    dist_calc, _, nearest_seed = dijkstra(graph, indices=seeds, min_only=True, return_predecessors=True)
    seed_along = np.zeros(len(pial))
    seed_along[seeds] = along[seeds]
    mask = (pial[:, 1] < MASK_Y_MAX) & (pial[:, 2] < MASK_Z_MAX)
    vertices = np.flatnonzero(mask)
    near = nearest_seed[vertices]
    out = {"vertices": vertices, "calcarine_mm": dist_calc[vertices], "eccentricity": seed_along[near],
           "dorsal": np.sign(pial[vertices, 2] - pial[near, 2]) >= 0, "y": pial[vertices, 1],
           "pial": pial[vertices]}
    for area in {a[1] for a in AREA_CENTRES}:
        entries = [a for a in AREA_CENTRES if a[1] == area]
        if hemi.name not in entries[0][2]:
            out[f"dist_{area}"] = np.full(len(vertices), np.inf)
            continue
        _, _, _, x, y, z, _ = entries[0]
        dx, dy, dz = traits.centre_shift_mm.get(area, (0.0, 0.0, 0.0))
        x, y, z = x + dx, y + dy, z + dz
        centre = int(np.argmin(np.linalg.norm(pial - [mirror * x, y, z], axis=1)))
        out[f"dist_{area}"] = dijkstra(graph, indices=centre)[vertices]
    return out


def _polyline_distance(points: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point to a polyline and its normalized arc position (0..1) along it."""
    lengths = np.linalg.norm(np.diff(line, axis=0), axis=1)
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    best = np.full(len(points), np.inf)
    along = np.zeros(len(points))
    for i, (a, b) in enumerate(zip(line[:-1], line[1:])):
        t = np.clip(((points - a) @ (b - a)) / lengths[i] ** 2, 0, 1)
        d = np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=1)
        closer = d < best
        best[closer] = d[closer]
        along[closer] = (starts[i] + t[closer] * lengths[i]) / starts[-1]
    return best, along


def _neighbour_average(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """Row-normalized (adjacency + identity): one step of neighbour averaging."""
    graph = (sp.csr_matrix(adjacency) > 0).astype(np.float32) + sp.identity(adjacency.shape[0], format="csr")
    return sp.csr_matrix(sp.diags(1.0 / np.asarray(graph.sum(1)).ravel()) @ graph, dtype=np.float32)


def _assign_rois(fields: dict, unit_voxel: np.ndarray, n_voxels: int, radius_mm: float) -> dict:
    """Disjoint ROIs of units (early bands first, then discs, a contested unit going to the nearer
    centre), then of voxels by majority of their units."""
    n = len(fields["calcarine_mm"])
    label = np.full(n, len(ROI_NAMES))  # "no ROI"
    posterior = fields["y"] < EARLY_Y_MAX
    for name, (lo, hi) in EARLY_BANDS_MM.items():
        band = posterior & (fields["calcarine_mm"] >= lo) & (fields["calcarine_mm"] < hi)
        label[(label == len(ROI_NAMES)) & band] = ROI_NAMES.index(name)
    areas = [(a[0], a[1]) for a in AREA_CENTRES]
    distances = np.stack([fields[f"dist_{area}"] for _, area in areas], axis=1)
    nearest = np.argmin(distances, axis=1)
    free = (label == len(ROI_NAMES)) & (distances.min(1) <= radius_mm)
    label[free] = [ROI_NAMES.index(areas[i][0]) for i in nearest[free]]
    votes = np.zeros((n_voxels, len(ROI_NAMES) + 1))
    np.add.at(votes, (unit_voxel, label), 1)
    voxel_label = votes.argmax(1)
    return {name: {"group": ROI_GROUPS[name], "voxels": np.flatnonzero(voxel_label == i).tolist()}
            for i, name in enumerate(ROI_NAMES)}


def _smooth_field(rng, smoother, n_fields: int, steps: int = 6) -> np.ndarray:
    """Spatially smooth random fields (n_units, n_fields), unit sd per field."""
    field = _smooth(rng.standard_normal((smoother.shape[0], n_fields)).astype(np.float32), smoother, steps)
    return field / field.std(0, keepdims=True)


def _encoding_tuning(fields: dict, subject: VirtualSubject, rng) -> dict:
    """Per-unit weights of the encoding model (see the module docstring), then per-voxel scaling."""
    traits = subject.traits
    sigma = AREA_SIGMA_MM * traits.size_scale

    def falloff(distance, sigma=sigma):
        return np.exp(-0.5 * (np.minimum(distance, 1e3) / sigma) ** 2).astype(np.float32)

    smoother, hemi = subject.unit_smoother, subject.unit_hemi
    calc = fields["calcarine_mm"]
    # early visual: weight fades beyond the V3 band and forward of the posterior occipital lobe
    w_early = (falloff(np.maximum(calc - 25.0, 0.0) * 1.5, AREA_SIGMA_MM)
               * falloff(np.maximum(fields["y"] - EARLY_Y_MAX, 0.0), AREA_SIGMA_MM))
    eccentricity = 1.0 + 14.0 * fields["eccentricity"] ** 1.3  # grid cells from the image centre
    angle = np.where(calc < 10, calc / 10, np.where(calc < 18, 1 - (calc - 10) / 8, np.minimum((calc - 18) / 7, 1)))
    angle = angle * np.pi / 2
    vertical = np.where(fields["dorsal"], 1.0, -1.0)  # dorsal bank: lower field (image rows grow downward)
    centre = (GRID - 1) / 2
    rf_x = centre + hemi * eccentricity * np.cos(angle)
    rf_y = centre + vertical * eccentricity * np.sin(angle)
    rf_sigma = (0.6 + 0.2 * eccentricity) * (1.0 + calc / 15.0)
    # hV4: large receptive fields near the fovea in the contralateral upper field
    w_v4 = falloff(fields["dist_hV4"])
    v4_mix = w_v4 / np.maximum(w_v4 + w_early, 1e-6)
    rf_x = (1 - v4_mix) * rf_x + v4_mix * (centre + hemi * 5.0)
    rf_y = (1 - v4_mix) * rf_y + v4_mix * (centre - 2.0)
    rf_sigma = (1 - v4_mix) * rf_sigma + v4_mix * 9.0
    gy, gx = np.mgrid[0:GRID, 0:GRID]
    rf = np.exp(-0.5 * ((gx.ravel()[None] - rf_x[:, None]) ** 2 + (gy.ravel()[None] - rf_y[:, None]) ** 2)
                / rf_sigma[:, None] ** 2)
    rf = (rf / rf.sum(1, keepdims=True)).astype(np.float32)
    # hV4 units prefer warm hues: red on average, spread smoothly over about +-30 degrees
    preferred_hue = np.deg2rad(WARM_HUE_SPREAD_DEG) * _smooth_field(rng, smoother, 1)[:, 0]
    bins = np.arange(HUE_BINS) * 2 * np.pi / HUE_BINS
    hue_pref = np.exp(2.0 * (np.cos(bins[None] - preferred_hue[:, None]) - 1.0)).astype(np.float32)
    w_faces = np.maximum.reduce([falloff(fields[f"dist_{a}"]) for a in ("FFA", "lFFA", "OFA")])
    w_places = np.maximum(falloff(fields["dist_PPA"]), falloff(fields["dist_OPA"]))
    w_bodies, w_words = falloff(fields["dist_EBA"]), falloff(fields["dist_VWFA"])
    # low-level drives and the distributed code fade inside the category areas (see the docstring)
    outside_areas = (1.0 - np.maximum.reduce([w_faces, w_places, w_bodies, w_words])) ** AREA_EXCLUSION_POWER
    w_early_drive, w_v4_drive = w_early * outside_areas, w_v4 * outside_areas
    n_attr = len(CATEGORIES) + len(PLACES) + len(COLOURS) + len(POSITIONS) + 2 + len(WORDS)
    place_slice = slice(len(CATEGORIES), len(CATEGORIES) + len(PLACES))
    word_slice = slice(n_attr - len(WORDS), n_attr)
    # within-area identity codes: which place (places area), which word (words area)
    identity = np.zeros((n_attr, len(calc)), dtype=np.float32)
    identity[place_slice] = 0.5 * _smooth_field(rng, smoother, len(PLACES)).T * w_places
    identity[word_slice] = 0.4 * _smooth_field(rng, smoother, len(WORDS)).T * w_words
    mixture = MIXTURE_GAIN * traits.mixture_scale * _smooth_field(rng, smoother, n_attr).T * outside_areas
    mixture[:len(CATEGORIES)] = 0.0  # which category it is: the category areas' job alone
    # signed, smooth preferences for colour opponency and orientation (radial bias at voxel scale)
    preference = _smooth_field(rng, smoother, 3).T * w_early_drive * OPPONENT_WEIGHT
    tuning = {"rf": rf, "w_edges": w_early_drive, "w_luminance": LUMINANCE_WEIGHT * w_early_drive,
              "hue_pref": hue_pref, "w_red_green": preference[0], "w_blue_yellow": preference[1],
              "w_orientation": preference[2], "w_colour": 1.2 * w_v4_drive, "w_identity": identity, "w_mixture": mixture,
              **{f"w_{k}": CATEGORY_GAIN * traits.category_gain.get(k, 1.0) * w
                 for k, w in zip(CATEGORY_AREAS, (w_faces, w_bodies, w_places, w_words))}}
    # scale each feature family to unit variance on a reference set, then each voxel's signal
    reference = generate_scenes(300, seed=subject.seed + 7919)
    maps = image_feature_maps(reference.images)
    tuning["scale_early"] = float((maps["edges"] @ rf.T).std() + 1e-6)
    tuning["scale_colour"] = float(_colour_drive(maps["hue"], rf, hue_pref, tuning["w_colour"]).std() + 1e-6)
    subject.tuning = tuning
    raw = subject.raw_signal(reference)
    tuning["signal_mean"] = raw.mean(0).astype(np.float32)
    tuning["signal_sd"] = (raw.std(0) + 1e-6).astype(np.float32)
    drive = subject.pooling @ np.maximum.reduce([w_early, w_v4, w_faces, w_places, w_bodies, w_words])
    tuning["ncsnr"] = (traits.snr_scale * (SNR_FLOOR + (SNR_PEAK - SNR_FLOOR) * drive)).astype(np.float32)
    smooth = _smooth(rng.standard_normal((subject.n_voxels, 512)).astype(np.float32), subject.voxel_smoother, 2)
    tuning["smooth_noise_sd"] = smooth.std(1).astype(np.float32)
    return tuning
