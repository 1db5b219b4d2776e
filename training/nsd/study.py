"""Several NSD subjects as one study (issue 16): the fsaverage mapping each bundle carries, and the
``study.json`` that lists the subjects' bundles.

``{lh,rh}.white-to-fsaverage.mgz`` (``nsddata/ppdata/subjNN/transforms``) hold, for every fsaverage
vertex, the 1-based index of the subject's native (white) vertex associated with it, as
``nsd_mapdata`` uses them (nearest neighbour). The export stores them 0-based, -1 for none, as
``cortex/fsaverage.npz``: :mod:`brainview.cortex.transfer` carries a painted selection between
subjects through them. A bundle without the file opens as before (the file is optional).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainview.errors import UserError
from training.nsd.layout import HEMISPHERES, NsdLayout


def white_to_fsaverage(layout: NsdLayout, hemi: str) -> Path:
    return layout.root / "nsddata" / "ppdata" / layout.subj / "transforms" / f"{hemi}.white-to-fsaverage.mgz"


def read_fsaverage_map(layout: NsdLayout, n_vertices: dict[str, int]) -> dict[str, np.ndarray] | None:
    """Per hemisphere, fsaverage vertex → native vertex (0-based, -1 for none); None without the files."""
    import nibabel as nib

    paths = {hemi: white_to_fsaverage(layout, hemi) for hemi in HEMISPHERES}
    if not all(p.exists() for p in paths.values()):
        return None
    out = {}
    for hemi, path in paths.items():
        index = np.rint(np.asarray(nib.load(str(path)).dataobj, dtype=np.float64).ravel()).astype(np.int64) - 1
        index[(index < 0) | (index >= n_vertices[hemi])] = -1  # NSD marks "none" with 9999 (or 0)
        if (index >= 0).sum() == 0:
            raise UserError(f"{path} maps no fsaverage vertex to the subject's {n_vertices[hemi]} vertices")
        out[hemi] = index.astype(np.int32)
    return out


def add_fsaverage_map(layout: NsdLayout, bundle: str | Path, mesh: dict) -> bool:
    """Write ``cortex/fsaverage.npz`` into an exported bundle (atomically); False when NSD's transforms
    are not on disk (the bundle then carries selections only to subjects on its own mesh)."""
    from brainview.cortex.transfer import FSAVERAGE_FILE

    mapping = read_fsaverage_map(layout, {h: len(mesh[h]["pial"]) for h in HEMISPHERES})
    if mapping is None:
        return False
    target = Path(bundle) / FSAVERAGE_FILE
    staging = target.with_name(".fsaverage.staging.npz")
    np.savez_compressed(staging, **mapping)
    staging.replace(target)
    return True


def write_nsd_study(out: str | Path, bundles: list[str | Path], name: str | None = None) -> Path:
    """``out/study.json`` listing the bundles, subjects named by their manifests (subj01, …), trials
    matched by ``nsd_id`` (the shared 1,000 images every subject saw)."""
    from brainview.analysis.study import write_study
    from brainview.bundle import open_bundle

    subjects = {}
    for path in bundles:
        bundle = open_bundle(path)
        subject = bundle.manifest["subject"]
        if subject in subjects:
            raise UserError(f"{path} and {subjects[subject]} are both {subject}")
        subjects[subject] = bundle.path
    return write_study(out, subjects, name=name or f"NSD {', '.join(subjects)}", match="nsd_id")
