"""Write per-voxel maps (a concept map, a pattern) to disk: ``.npy`` per voxel or GIFTI ``.func.gii`` per vertex.

Atomic writes (``roi_io.write_atomic``). The GIFTI files hold one float32 value per vertex of the
bundle's surface, 0 where no voxel maps to the vertex, with the hemisphere named in the metadata.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from brainview.cortex.roi_io import GIFTI_STRUCTURE, write_atomic
from brainview.cortex.surface import HEMISPHERES, Cortex

GIFTI_SUFFIX = ".func.gii"


def save_voxel_map(path: str | Path, values: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=np.float32), allow_pickle=False)
    return write_atomic(path, buffer.getvalue())


def hemisphere_paths(path: str | Path) -> dict[str, Path]:
    """``NAME.func.gii`` → ``NAME.lh.func.gii`` and ``NAME.rh.func.gii``."""
    path = Path(path)
    stem = path.name[:-len(GIFTI_SUFFIX)] if path.name.endswith(GIFTI_SUFFIX) else path.stem
    return {hemi: path.with_name(f"{stem}.{hemi}{GIFTI_SUFFIX}") for hemi in HEMISPHERES}


def export_gifti_map(path: str | Path, cortex: Cortex, voxel_values: np.ndarray) -> list[Path]:
    """One ``.func.gii`` per hemisphere with the map on its vertices; returns the paths written."""
    import nibabel as nib

    vertex_values = np.nan_to_num(cortex.voxels_to_vertices(voxel_values), nan=0.0).astype(np.float32)
    written = []
    for hemi, target in hemisphere_paths(path).items():
        array = nib.gifti.GiftiDataArray(vertex_values[cortex.hemi_slice(hemi)], intent="NIFTI_INTENT_ESTIMATE",
                                         datatype="NIFTI_TYPE_FLOAT32")
        image = nib.gifti.GiftiImage(darrays=[array],
                                     meta=nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": GIFTI_STRUCTURE[hemi]}))
        written.append(write_atomic(target, image.to_xml()))
    return written
