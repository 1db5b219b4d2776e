"""One hemisphere of the cortex view in VTK: its mesh, colour layers, cell locator and level-of-detail copy.

Colouring follows MNE's ``Brain``: underlay (sulcal depth as grey), overlay (a per-vertex value
through a colormap), selection fill and ROI outlines are composed on the CPU into one RGB
uint8 array per hemisphere that VTK uses directly as point scalars. A change recomposes only
the vertices it touches and marks the array ``Modified()``; nothing is rebuilt. The coarse copy
(:mod:`brainview.cortex.lod`) takes its colours from the full vertices it keeps, updated the same
way, so it shows what the full mesh shows while the camera moves or a stroke is drawn.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
from vtkmodules.vtkCommonCore import VTK_UNSIGNED_CHAR, reference, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkStaticCellLocator
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer

from brainview.cortex import Cortex
from brainview.cortex.surface import FILL_EDGE, FILL_INSIDE, FILL_NO_VOXEL
from brainview.cortex.lod import Decimated

BACKGROUND = (0.11, 0.11, 0.13)
SELECTION_RGB = np.array([0, 230, 120], dtype=np.float32)
SELECTION_ALPHA = 0.6
#: painted vertices without a voxel: a muted amber, apart from the selection's green (they do not count)
NO_VOXEL_RGB = np.array([235, 180, 60], dtype=np.float32)
#: hits closer than this (parametric, along the ray) to a triangle edge count: a ray through a vertex or
#: an edge, exactly between triangles, otherwise slips through and picks the far side
PICK_TOLERANCE = 1e-6
OUTLINE_PALETTE = np.array([[31, 119, 180], [255, 127, 14], [214, 39, 40], [148, 103, 189], [140, 86, 75],
                            [227, 119, 194], [188, 189, 34], [23, 190, 207], [255, 255, 255]], dtype=np.uint8)


class HemiScene:
    """VTK objects and colour layers of one hemisphere, in its own half of the window."""

    def __init__(self, cortex: Cortex, hemi: str, surface: str):
        self.hemi = hemi
        self.mesh = cortex.hemis[hemi]
        n = self.mesh.n_vertices
        self.polydata = vtkPolyData()
        self.surface = surface
        self.underlay = _sulcal_grey(self.mesh.sulc)
        self.base = self.underlay.copy()  # underlay with the overlay on top
        self.fill = np.zeros(n, dtype=np.uint8)  # FILL_* codes of the selection layer
        self.outline = np.full(n, -1, dtype=np.int16)  # index into outline_colors, -1: none
        self.outline_colors = OUTLINE_PALETTE
        self.fill_alpha = SELECTION_ALPHA  # the selection layer's opacity (0: hidden)
        self.show_outlines = True
        self.colors = self.base.copy()
        self.color_array = numpy_to_vtk(self.colors, deep=False, array_type=VTK_UNSIGNED_CHAR)
        self.color_array.SetName("colors")
        self.polydata.GetPointData().SetScalars(self.color_array)
        self.actor = _surface_actor(self.polydata)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*BACKGROUND)
        self.renderer.AddActor(self.actor)
        self.locator = vtkStaticCellLocator()
        self.locator.UseExistingSearchStructureOn()  # colour changes modify the polydata; the geometry stays
        self.normals = np.zeros((n, 3), dtype=np.float32)
        self.coarse: Decimated | None = None
        self.coarse_actor: vtkActor | None = None
        self._coarse_colors: np.ndarray | None = None
        self._coarse_array = None
        self.set_surface(surface)

    def set_surface(self, surface: str) -> None:
        """Show ``surface``: its points and its faces (the flatmap draws fewer: the cuts and medial wall).

        Drops the coarse copy, which belongs to the previous surface."""
        self.surface = surface
        self.normals = self.mesh.vertex_normals(surface)
        _set_geometry(self.polydata, self.mesh.coords(surface), self.mesh.surface_faces(surface), self.normals)
        self.locator.SetDataSet(self.polydata)
        self.locator.ForceBuildLocator()
        self.set_coarse(None)

    def fit_camera(self, renderer: vtkRenderer, preset, aspect: float) -> None:
        """Point ``renderer``'s camera along ``preset`` (direction, up) and fit the drawn mesh snugly at ``aspect``."""
        direction, up = (np.asarray(v, dtype=float) for v in preset)
        right = np.cross(direction, up)
        xyz = self.mesh.coords(self.surface)[self.mesh.drawn_vertices(self.surface)].astype(float)
        across, along, depth = xyz @ right, xyz @ up, xyz @ direction
        center = ((right * (across.max() + across.min()) + up * (along.max() + along.min())) / 2
                  + direction * depth.mean())
        camera = renderer.GetActiveCamera()
        half_height = 1.06 * max(np.ptp(along) / 2, np.ptp(across) / 2 / aspect)
        distance = (depth.mean() - depth.min()) + half_height / np.tan(np.radians(camera.GetViewAngle() / 2))
        camera.SetFocalPoint(*center)
        camera.SetPosition(*(center - distance * direction))
        camera.SetViewUp(*up)
        renderer.ResetCameraClippingRange()

    # -- level of detail -------------------------------------------------------------------------
    def set_coarse(self, coarse: Decimated | None) -> None:
        """Keep ``coarse`` (a copy of the current surface from ``mesh.lod``) ready for :meth:`show_coarse`;
        None drops it and shows the full mesh."""
        if self.coarse_actor is not None:
            self.renderer.RemoveActor(self.coarse_actor)
        self.coarse, self.coarse_actor, self._coarse_colors, self._coarse_array = coarse, None, None, None
        self.actor.SetVisibility(True)
        if coarse is None:
            return
        polydata = vtkPolyData()
        _set_geometry(polydata, coarse.coords, coarse.faces, coarse.carry(self.normals))
        self._coarse_colors = np.ascontiguousarray(coarse.carry(self.colors))
        self._coarse_array = numpy_to_vtk(self._coarse_colors, deep=False, array_type=VTK_UNSIGNED_CHAR)
        polydata.GetPointData().SetScalars(self._coarse_array)
        self.coarse_actor = _surface_actor(polydata)
        self.coarse_actor.SetVisibility(False)
        self.coarse_actor.PickableOff()  # picks go to the full mesh (see pick)
        self.renderer.AddActor(self.coarse_actor)

    def show_coarse(self, coarse: bool) -> None:
        """Draw the coarse copy (when there is one) instead of the full mesh, or the full mesh again."""
        coarse = coarse and self.coarse_actor is not None
        self.actor.SetVisibility(not coarse)
        if self.coarse_actor is not None:
            self.coarse_actor.SetVisibility(coarse)

    @property
    def showing_coarse(self) -> bool:
        return self.coarse_actor is not None and bool(self.coarse_actor.GetVisibility())

    # -- colours ---------------------------------------------------------------------------------
    def compose(self, vertices=slice(None)) -> None:
        """Recompute the displayed colours of ``vertices`` from the layers, in place (the coarse copy's too)."""
        self.colors[vertices] = _layer(self.base[vertices], self.fill[vertices], self.outline[vertices],
                                       self.outline_colors, self.fill_alpha, self.show_outlines)
        self.color_array.Modified()
        if self.coarse is not None:
            kept = self.coarse.coarse_vertices(vertices)
            if kept.size:
                self._coarse_colors[kept] = self.colors[self.coarse.vertex_map[kept]]
                self._coarse_array.Modified()

    def coarse_colors(self) -> np.ndarray | None:
        """The colours the coarse copy draws (None without one)."""
        return None if self._coarse_colors is None else self._coarse_colors.copy()

    def layered_colors(self, fill: bool = True) -> np.ndarray:
        """Colours of every vertex from the layers, with or without the selection fill (for figures)."""
        return _layer(self.base, self.fill if fill else np.zeros_like(self.fill), self.outline, self.outline_colors,
                      self.fill_alpha, self.show_outlines)

    # -- picking ---------------------------------------------------------------------------------
    def pick(self, near, far) -> int | None:
        """Local vertex where the segment ``near``–``far`` (world coordinates) first meets the full mesh.

        The cell locator, built once per surface, answers whatever is drawn (the full mesh or its coarse copy)."""
        t, position, pcoords = reference(0.0), [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
        sub_id, cell = reference(0), reference(-1)
        hit = self.locator.IntersectWithLine(near, far, PICK_TOLERANCE, t, position, pcoords, sub_id, cell)
        if not hit or int(cell) < 0:
            return None
        return self.nearest_vertex(int(cell), position)

    def nearest_vertex(self, cell: int, position) -> int:
        corners = self.mesh.surface_faces(self.surface)[cell]
        xyz = np.asarray(self.polydata.GetPoints().GetData())  # numpy view of the current surface
        return int(corners[np.argmin(np.linalg.norm(xyz[corners] - np.asarray(position), axis=1))])


def view_ray(renderer: vtkRenderer, x: float, y: float) -> tuple[tuple, tuple]:
    """World points on the near and the far clipping plane under display pixel (x, y)."""
    ends = []
    for depth in (0.0, 1.0):
        renderer.SetDisplayPoint(x, y, depth)
        renderer.DisplayToWorld()
        wx, wy, wz, w = renderer.GetWorldPoint()
        ends.append((wx / w, wy / w, wz / w))
    return ends[0], ends[1]


def _set_geometry(polydata: vtkPolyData, coords: np.ndarray, faces: np.ndarray, normals: np.ndarray) -> None:
    faces = np.asarray(faces, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(np.arange(0, faces.size + 1, 3, dtype=np.int64), deep=True),
                  numpy_to_vtkIdTypeArray(faces.ravel(), deep=True))
    polydata.SetPolys(cells)
    points = vtkPoints()
    points.SetData(numpy_to_vtk(coords, deep=True))
    polydata.SetPoints(points)
    polydata.GetPointData().SetNormals(numpy_to_vtk(normals, deep=True))
    polydata.Modified()


def _surface_actor(polydata: vtkPolyData) -> vtkActor:
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(polydata)
    mapper.SetColorModeToDirectScalars()
    mapper.ScalarVisibilityOn()
    actor = vtkActor()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    prop.SetAmbient(0.25)
    prop.SetDiffuse(0.75)
    prop.SetSpecular(0.05)
    return actor


def _layer(base: np.ndarray, fill: np.ndarray, outline: np.ndarray, outline_colors: np.ndarray,
           fill_alpha: float = SELECTION_ALPHA, outlines: bool = True) -> np.ndarray:
    """Underlay-and-overlay colours with the selection blended in (its edge opaque while it is shown) and ROI
    outlines on top (uint8 RGB)."""
    rgb = base.astype(np.float32)
    edge_alpha = 1.0 if fill_alpha > 0 else 0.0
    for code, color, alpha in ((FILL_INSIDE, SELECTION_RGB, fill_alpha), (FILL_EDGE, SELECTION_RGB, edge_alpha),
                               (FILL_NO_VOXEL, NO_VOXEL_RGB, fill_alpha)):
        drawn = fill == code
        rgb[drawn] = rgb[drawn] * (1 - alpha) + color * alpha
    out = rgb.astype(np.uint8)
    drawn = outline >= 0 if outlines else np.zeros(outline.shape, dtype=bool)
    out[drawn] = outline_colors[outline[drawn]]
    return out


def _sulcal_grey(sulc: np.ndarray) -> np.ndarray:
    """Grey underlay: gyri (negative sulcal depth) light, sulci dark, smoothly."""
    scale = float(np.std(sulc)) or 1.0
    grey = 165 - 55 * np.tanh(sulc / scale)
    return np.repeat(grey.astype(np.uint8)[:, None], 3, axis=1)
