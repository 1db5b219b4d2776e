"""The virtual subject: a posterior visual cortex on nilearn's fsaverage5 with a known encoding model.

Why: the ROI analysis of the paper can only be checked where the right answer is known. Here the
"voxels" are vertices of a real cortical mesh, the ROIs sit at published locations, and every
voxel's response is a written-down function of the scene, so each ROI's preferred content is
ground truth (see ``README.md`` in this folder). The anatomy (mask, voxels, area positions, a subject's
traits) is in :mod:`training.demo_world.anatomy`.

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

from brainview.cortex.surface import Hemisphere
from training.demo_world.anatomy import (AREA_CENTRES, CATEGORY_AREAS, DISC_RADIUS_MM, EARLY_Y_MAX, HEMIS, ROI_GROUPS,
                                         ROI_NAMES, VOXEL_MM, SubjectTraits, assign_rois, hemisphere_geometry,
                                         load_fsaverage5, voxel_grid)
from training.demo_world.scenes import CATEGORIES, COLOURS, PLACES, POSITIONS, WORDS, SceneSet, generate_scenes

__all__ = ["AREA_CENTRES", "HEMIS", "ROI_GROUPS", "ROI_NAMES", "VOXEL_MM", "SubjectTraits", "VirtualSubject",
           "attribute_matrix", "category_drives", "image_feature_maps", "load_fsaverage5"]

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
        geometry = [hemisphere_geometry(hemis[h], traits) for h in HEMIS]
        unit_vertices = np.concatenate([g["vertices"] + hemis[h].offset for g, h in zip(geometry, HEMIS)])
        fields = {k: np.concatenate([g[k] for g in geometry]) for k in geometry[0] if k != "vertices"}
        unit_hemi = np.concatenate([np.full(len(g["vertices"]), 1.0 if h == "lh" else -1.0)
                                    for g, h in zip(geometry, HEMIS)]).astype(np.float32)
        unit_voxel = voxel_grid(fields["pial"], unit_hemi, traits.grid_offset_mm)
        unit_smoother = _neighbour_average(sp.block_diag([hemis[h].adjacency for h in HEMIS], format="csr")
                                           [unit_vertices][:, unit_vertices])
        membership = sp.csr_matrix((np.ones(len(unit_voxel)), (unit_voxel, np.arange(len(unit_voxel)))))
        voxel_smoother = _neighbour_average(membership @ unit_smoother @ membership.T)
        subject = cls(seed, mesh, unit_vertices, unit_voxel, unit_hemi, {}, {}, unit_smoother, voxel_smoother, traits)
        subject.rois = assign_rois(fields, unit_voxel, subject.n_voxels, DISC_RADIUS_MM * traits.size_scale)
        subject.tuning = _encoding_tuning(fields, subject, np.random.default_rng([seed, 101]))
        return subject

    # -- encoding -----------------------------------------------------------------------------

    def signal(self, scenes: SceneSet, maps: dict | None = None) -> np.ndarray:
        """Noise-free response (n, n_voxels), each voxel scaled to its signal sd (ncsnr units). ``maps``: the
        scenes' :func:`image_feature_maps` if already computed (they are the same for every subject)."""
        t = self.tuning
        raw = self.raw_signal(scenes, maps)
        return ((raw - t["signal_mean"]) / t["signal_sd"] * t["ncsnr"]).astype(np.float32)

    def respond(self, scenes: SceneSet, repeats: int = 3, rng: np.random.Generator | None = None,
                maps: dict | None = None) -> np.ndarray:
        """Average of ``repeats`` noisy trials per scene, (n, n_voxels) float32 (noise sd 1 per trial)."""
        rng = rng if rng is not None else np.random.default_rng([self.seed, 202])
        signal = self.signal(scenes, maps)
        total = np.zeros_like(signal)
        for noise in self.trial_noise(len(scenes), repeats, rng):
            total += signal + noise
        return (total / repeats).astype(np.float32)

    def trial_noise(self, n: int, repeats: int, rng: np.random.Generator) -> list[np.ndarray]:
        """The noise of each of ``repeats`` trials of ``n`` scenes, drawn from ``rng`` in the order
        :meth:`respond` draws it: the same generator state gives the very noise a response averaged."""
        return [self.noise(n, rng) for _ in range(repeats)]

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-variance trial noise, half independent and half spatially smooth."""
        white = rng.standard_normal((n, self.n_voxels)).astype(np.float32)
        smooth = _smooth(rng.standard_normal((n, self.n_voxels)).astype(np.float32).T, self.voxel_smoother, 2).T
        smooth /= self.tuning["smooth_noise_sd"]
        return np.sqrt(1 - SMOOTH_NOISE_FRACTION) * white + np.sqrt(SMOOTH_NOISE_FRACTION) * smooth

    def raw_signal(self, scenes: SceneSet, maps: dict | None = None) -> np.ndarray:
        """Unscaled voxel responses (n, n_voxels): the mean of each voxel's units."""
        return np.asarray((self.pooling @ self._unit_signal(scenes, maps).T).T, dtype=np.float32)

    def _unit_signal(self, scenes: SceneSet, maps: dict | None) -> np.ndarray:
        t = self.tuning
        maps = maps if maps is not None else image_feature_maps(scenes.images)
        early = sum(maps[k] @ t["rf"].T * t[f"w_{k}"] for k in EARLY_CHANNELS)
        colour = _colour_drive(maps["hue"], t["rf"], t["hue_pref"], t["w_colour"])
        drives = category_drives(scenes)
        contra = 1.0 + 0.3 * drives["side"][:, None] * self.unit_hemi[None, :]
        category = sum(drives[k][:, None] * t[f"w_{k}"][None, :] for k in ("faces", "bodies", "places", "words"))
        attributes = attribute_matrix(scenes)
        category = category * contra + attributes @ t["w_identity"]
        mixture = attributes @ t["w_mixture"]
        return early / t["scale_early"] + colour / t["scale_colour"] + category + mixture


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


def _neighbour_average(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """Row-normalized (adjacency + identity): one step of neighbour averaging."""
    graph = (sp.csr_matrix(adjacency) > 0).astype(np.float32) + sp.identity(adjacency.shape[0], format="csr")
    return sp.csr_matrix(sp.diags(1.0 / np.asarray(graph.sum(1)).ravel()) @ graph, dtype=np.float32)


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
