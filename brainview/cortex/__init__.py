"""Cortical surfaces, the vertex<->voxel map, ROI selection with a geodesic brush, ROI files. No Qt, no VTK."""

from brainview.cortex.roi_io import (Roi, export_gifti_label, export_label, export_surface_pair, import_surface_roi,
                                     load_roi, save_roi, selection_vertices)
from brainview.cortex.selection import RoiSelection
from brainview.cortex.surface import HEMISPHERES, SURFACES, Cortex, Hemisphere

__all__ = ["Cortex", "Hemisphere", "HEMISPHERES", "SURFACES", "RoiSelection", "Roi", "save_roi", "load_roi",
           "export_label", "export_gifti_label", "export_surface_pair", "import_surface_roi", "selection_vertices"]
