"""Flatmaps: the bundle's optional lh_flat/rh_flat (format, validation), the cortex's flat surface (faces
of the cut only, bounds from drawn vertices), and the cortex view on it: picking, painting, overlay
and ROI outlines work as on the other surfaces; the demo bundle ships fsaverage5's flatmap."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint

from brainview.bundle import BundleError, open_bundle
from brainview.cortex import Cortex
from tests.factories import make_bundle
from tests.qt.test_cortex_view import LEFT, drag, send, shown_view


@pytest.fixture(scope="module")
def flat_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("flat") / "bundle", subdivisions=3, n_voxels=60, flat=True)


@pytest.fixture
def flat_view(qtbot, flat_bundle):
    return shown_view(qtbot, Cortex.from_bundle(flat_bundle), surface="flat")


def _rewrite_mesh(bundle, tmp_path, change):
    copy = tmp_path / "copy"
    shutil.copytree(bundle.path, copy)
    with np.load(copy / "cortex" / "mesh.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(copy / "cortex" / "mesh.npz", **arrays)
    return copy


def test_bundle_round_trip_and_validation(flat_bundle, tmp_path):
    mesh = flat_bundle.mesh["lh"]
    assert mesh["flat"].shape == mesh["inflated"].shape and 0 < len(mesh["flat_faces"]) < len(mesh["faces"])
    for change, message in (
            (lambda a: [a.pop("rh_flat"), a.pop("rh_flat_faces")], "one hemisphere only"),
            (lambda a: a.pop("lh_flat_faces"), "come together"),
            (lambda a: a.__setitem__("lh_flat_faces", a["lh_flat_faces"] + 10 ** 6), "outside"),
            (lambda a: a.__setitem__("lh_flat", a["lh_flat"][:5]), r"\"lh_flat\" has shape \(5, 3\), expected \(axis 0=642"),
            (lambda a: a["rh_flat"].__setitem__((0, 0), np.nan), "NaN")):
        shutil.rmtree(tmp_path / "copy", ignore_errors=True)
        with pytest.raises(BundleError, match=message):
            open_bundle(_rewrite_mesh(flat_bundle, tmp_path, change))


def test_cortex_flat_surface(flat_bundle, tmp_path):
    cortex = Cortex.from_bundle(flat_bundle)
    assert cortex.surfaces == ("inflated", "pial", "flat")
    lh = cortex.hemis["lh"]
    drawn = lh.drawn_vertices("flat")
    assert 0 < len(drawn) < lh.n_vertices
    hidden = np.setdiff1d(np.arange(lh.n_vertices), drawn)
    # the brush walks the flatmap's own edges: it never reaches a vertex the cut left out
    ball, _ = lh.geodesic_ball(int(drawn[0]), 500.0, "flat")
    assert not np.isin(ball, hidden).any() and np.isin(drawn, ball).mean() > 0.9
    normals = lh.vertex_normals("flat")[drawn]
    assert np.allclose(np.abs(normals[:, 2]), 1.0) and len(np.unique(np.sign(normals[:, 2]))) == 1
    no_flat = Cortex.from_bundle(make_bundle(tmp_path / "plain", subdivisions=1, n_voxels=20))
    assert no_flat.surfaces == ("inflated", "pial")
    with pytest.raises(ValueError, match="surface must be one of"):
        no_flat.hemis["lh"].coords("flat")


def test_view_picks_paints_and_outlines_on_the_flatmap(flat_view):
    view, cortex = flat_view, flat_view.cortex
    assert view.controls.surface.findText("flat") >= 0
    assert not view.controls._preset_action.isVisible()  # no "lateral" preset on the flatmap
    area = view._vtk
    centre = QPoint(area.width() // 4, area.height() // 2)
    hit = view.pick(centre)
    assert hit is not None and hit[0] == "lh"
    assert hit[1] in set(cortex.hemis["lh"].drawn_vertices("flat"))
    view.set_brush_enabled(True)
    drag(view, centre, centre + QPoint(30, 0), LEFT)
    painted = view.selection.painted_vertices()
    assert painted.size > 0 and np.isin(painted, cortex.hemis["lh"].drawn_vertices("flat")).all()
    assert view._scenes["lh"].fill[painted].all()
    roi = cortex.vertices_to_voxels(painted)
    view.set_roi_outlines({"painted": roi})
    outline = cortex.roi_outline(roi)[cortex.hemi_slice("lh")]
    scene = view._scenes["lh"]
    assert outline.any() and (scene.colors[outline] == scene.outline_colors[0]).all()
    values = np.linspace(-1, 1, cortex.n_vertices).astype(np.float32)
    view.set_overlay(values)
    image = view.render_to_image()
    assert (image[..., 0].astype(int) - image[..., 2] > 80).sum() > 100  # red overlay drawn on the flatmap
    send(view, QEvent.Type.MouseMove, centre)
    assert view.hover_info.startswith("lh vertex")


def test_view_falls_back_when_a_bundle_has_no_flatmap(flat_view, tmp_path):
    plain = Cortex.from_bundle(make_bundle(tmp_path / "plain", subdivisions=1, n_voxels=20))
    flat_view.set_cortex(plain)
    assert flat_view.surface == "inflated" and flat_view.controls.surface.findText("flat") == -1
    with pytest.raises(ValueError):
        flat_view.set_surface("flat")


def test_the_demo_bundle_has_fsaverage5_flatmaps():
    from brainview.paths import demo_bundle_path

    bundle = open_bundle(demo_bundle_path())
    cortex = Cortex.from_bundle(bundle)
    assert cortex.surfaces == ("inflated", "pial", "flat")
    for hemi in ("lh", "rh"):
        drawn = cortex.hemis[hemi].drawn_vertices("flat")
        assert 9000 < len(drawn) < 10242  # the medial wall is cut out
        assert np.ptp(cortex.hemis[hemi].flat[drawn][:, 2]) == 0  # flat
