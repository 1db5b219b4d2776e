"""The virtual subjects' anatomy: where the visual areas lie on nilearn's fsaverage5, and how a subject
differs from the reference one (:class:`SubjectTraits`).

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
- a drawn subject (:meth:`SubjectTraits.draw`) moves each area's centre around the published
  coordinate, keeping different areas' centres ``MIN_AREA_SEPARATION_MM`` apart, as one person's
  category areas are disjoint patches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse.csgraph import dijkstra

from brainview.cortex.surface import Hemisphere


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


CATEGORY_AREAS = ("faces", "bodies", "places", "words")
#: Two areas' centres stay at least this far apart (geodesic on the pial surface) in a drawn subject: the
#: disc radius, so no area's centre lies inside another area's disc and each keeps a core of its own.
#: Why: category-selective areas of one person are disjoint patches (adjacent ones, such as the left
#: FFA and VWFA, about 1 cm apart), while independent N(0, 4 mm) shifts put two centres within 12 mm
#: in 61% of drawn subjects and onto the same vertex in some (hV4 onto OFA). At the published
#: coordinates the closest pair is 14 mm apart (OFA-EBA, right), so the reference subject keeps it.
MIN_AREA_SEPARATION_MM = DISC_RADIUS_MM
MAX_SHIFT_DRAWS = 1000


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
        """A subject drawn around the reference: shifts N(0, ``centre_sd_mm``) per axis (clipped at 2 sd)
        conditioned on the areas staying apart (:func:`closest_areas` at least ``MIN_AREA_SEPARATION_MM``;
        the whole set of shifts is redrawn until it holds), sizes x0.85-1.2, SNR x0.75-1.15, a random
        grid offset, category gains x0.8-1.25, mixture x0.8-1.2."""
        rng = np.random.default_rng([seed, 4242])
        areas = sorted({a[1] for a in AREA_CENTRES})
        for _ in range(MAX_SHIFT_DRAWS):
            shifts = {a: tuple(float(v) for v in np.clip(rng.normal(0.0, centre_sd_mm, 3), -2 * centre_sd_mm,
                                                              2 * centre_sd_mm)) for a in areas}
            if closest_areas(shifts)[0] >= MIN_AREA_SEPARATION_MM:
                break
        else:
            raise ValueError(f"no area shifts {centre_sd_mm} mm wide keep the areas {MIN_AREA_SEPARATION_MM} mm "
                             f"apart in {MAX_SHIFT_DRAWS} draws (seed {seed})")
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


def voxel_grid(pial: np.ndarray, hemi: np.ndarray, offset_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Voxel index of each unit: the ``VOXEL_MM`` grid cell (per hemisphere, grid moved by ``offset_mm``)
    that contains it."""
    cells = np.concatenate([np.floor((pial - np.asarray(offset_mm)) / VOXEL_MM).astype(np.int64), hemi[:, None].astype(np.int64)], axis=1)
    _, voxel = np.unique(cells, axis=0, return_inverse=True)
    return voxel.ravel()


def hemisphere_geometry(hemi: Hemisphere, traits: SubjectTraits) -> dict[str, np.ndarray]:
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
    for area, centre in area_centre_vertices(pial, hemi.name, traits.centre_shift_mm).items():
        out[f"dist_{area}"] = (np.full(len(vertices), np.inf) if centre is None
                               else dijkstra(graph, indices=centre)[vertices])
    return out


def area_centre_vertices(pial: np.ndarray, hemi: str, shifts: dict) -> dict[str, int | None]:
    """Each area's centre on one hemisphere: the vertex nearest to its published coordinate moved by its
    shift in ``shifts`` (right-hemisphere coordinates, mirrored for the left); None where it has none."""
    mirror = -1.0 if hemi == "lh" else 1.0
    out = {}
    for _, area, hemis, x, y, z, _ in AREA_CENTRES:
        if area in out:
            continue
        dx, dy, dz = shifts.get(area, (0.0, 0.0, 0.0))
        out[area] = (int(np.argmin(np.linalg.norm(pial - [mirror * (x + dx), y + dy, z + dz], axis=1)))
                     if hemi in hemis else None)
    return out


def closest_areas(shifts: dict) -> tuple[float, str, str, str]:
    """The two different areas whose centres lie closest together on one hemisphere for ``shifts``:
    (geodesic mm on the pial surface, area, area, hemisphere)."""
    best = (np.inf, "", "", "")
    for hemi, (pial, graph) in _pial_graphs().items():
        centres = {a: v for a, v in area_centre_vertices(pial, hemi, shifts).items() if v is not None}
        names = sorted(centres)
        distance = dijkstra(graph, indices=[centres[a] for a in names])
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                best = min(best, (float(distance[i, centres[b]]), a, b, hemi))
    return best


@functools.lru_cache(maxsize=1)
def _pial_graphs() -> dict[str, tuple[np.ndarray, object]]:
    """Per hemisphere, fsaverage5's pial coordinates and its edge graph (mm), loaded once."""
    mesh = load_fsaverage5()
    return {h: (mesh[h]["pial"].astype(np.float64),
                Hemisphere(h, mesh[h]["inflated"], mesh[h]["pial"], mesh[h]["faces"], mesh[h]["sulc"], 0)
                .edge_graph("pial")) for h in HEMIS}


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


def assign_rois(fields: dict, unit_voxel: np.ndarray, n_voxels: int, radius_mm: float) -> dict:
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
