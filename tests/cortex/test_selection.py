import numpy as np
import pytest
import scipy.sparse as sp

from brainview.cortex import Cortex, RoiSelection
from brainview.errors import UserError
from tests.factories import sphere_mesh


@pytest.fixture
def cortex():
    """Spheres (2 x 162 vertices) where vertex i maps to voxel i // 2: 162 voxels, two vertices each."""
    mesh = sphere_mesh(2)
    n = 324
    matrix = sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), np.arange(n) // 2)), shape=(n, n // 2))
    rois = {"A": {"group": "g", "voxels": list(range(0, 10))}, "B": {"group": "g", "voxels": list(range(5, 20))}}
    return Cortex(mesh, matrix, rois)


def test_atlas_rois_make_a_union(cortex):
    selection = RoiSelection(cortex)
    assert selection.is_empty()
    selection.set_atlas_rois(["A", "B"])
    assert selection.voxels().tolist() == list(range(20))
    assert selection.atlas_rois == ("A", "B")
    with pytest.raises(UserError, match="unknown ROI 'C'"):
        selection.set_atlas_rois(["C"])


def test_a_stroke_of_several_dabs_is_one_undo_step(cortex):
    selection = RoiSelection(cortex)
    seen = []
    selection.on_change(lambda s: seen.append(len(s.voxels())))
    selection.begin_stroke()
    selection.paint([100, 101])
    selection.paint([102])
    selection.end_stroke()
    assert selection.voxels().tolist() == [50, 51]
    assert selection.painted_vertices().tolist() == [100, 101, 102]
    assert seen == [1, 2, 2]  # one per dab, so a view repaints while painting, and one at the end of the stroke
    selection.paint([200])  # outside a stroke: its own step, one notification
    assert seen == [1, 2, 2, 3]
    assert selection.voxels().tolist() == [50, 51, 100]
    assert selection.undo()
    assert selection.voxels().tolist() == [50, 51]
    assert selection.undo()
    assert selection.is_empty() and selection.painted_vertices().size == 0
    assert not selection.undo() and selection.can_redo
    assert selection.redo() and selection.voxels().tolist() == [50, 51]
    assert selection.redo() and selection.voxels().tolist() == [50, 51, 100]
    assert not selection.redo()


def test_erasing_removes_paint_and_cuts_atlas_voxels(cortex):
    selection = RoiSelection(cortex)
    selection.set_atlas_rois(["A"])
    selection.paint([60, 61, 62, 63])  # voxels 30, 31
    selection.paint([62], erase=True)  # vertex 62 reaches voxel 31: later edit wins
    assert selection.voxels().tolist() == list(range(10)) + [30]
    selection.paint([0, 1, 2], erase=True)  # voxels 0, 1 of atlas ROI A
    assert selection.voxels().tolist() == list(range(2, 10)) + [30]
    assert selection.erased_vertices().tolist() == [0, 1, 2, 62]
    # the cut stays when the ROI is re-checked, until painted again
    selection.set_atlas_rois([])
    selection.set_atlas_rois(["A"])
    assert 0 not in selection.voxels()
    selection.paint([0])
    assert 0 in selection.voxels()


def test_undo_restores_atlas_changes_and_clear(cortex):
    selection = RoiSelection(cortex)
    selection.set_atlas_rois(["A"])
    selection.paint([300])
    selection.clear()
    assert selection.is_empty() and selection.atlas_rois == ()
    selection.undo()
    assert selection.atlas_rois == ("A",) and 150 in selection.voxels()
    selection.undo()
    selection.undo()
    assert selection.atlas_rois == () and not selection.can_undo


def test_a_new_edit_drops_the_redo_history_and_noop_edits_add_no_step(cortex):
    selection = RoiSelection(cortex)
    selection.paint([10])
    selection.undo()
    selection.paint([20])
    assert not selection.can_redo
    selection.set_atlas_rois([])  # unchanged
    selection.begin_stroke()
    selection.paint([20])  # already painted
    selection.end_stroke()
    assert selection.undo() and not selection.can_undo


def test_undo_during_a_stroke_ends_it_first(cortex):
    selection = RoiSelection(cortex)
    selection.begin_stroke()
    selection.paint([4])
    selection.undo()
    assert selection.is_empty() and not selection.in_stroke


def test_replace_listeners_and_validation(cortex):
    selection = RoiSelection(cortex)
    calls = []
    callback = selection.on_change(calls.append)
    selection.set_atlas_rois(["B"])
    selection.replace([3, 4, 99], painted_vertices=[8])
    assert selection.voxels().tolist() == [3, 4, 99] and selection.atlas_rois == ()
    assert selection.painted_vertices().tolist() == [8]
    assert len(calls) == 2 and calls[0] is selection
    selection.disconnect(callback)
    selection.undo()
    assert len(calls) == 2 and selection.atlas_rois == ("B",)
    with pytest.raises(UserError):
        selection.replace([cortex.n_voxels])
    with pytest.raises(IndexError):
        selection.paint([cortex.n_vertices])


def test_undo_history_is_bounded(cortex):
    selection = RoiSelection(cortex, max_undo=3)
    for v in range(5):
        selection.paint([v * 10])
    undone = 0
    while selection.undo():
        undone += 1
    assert undone == 3 and selection.voxels().tolist() == [0, 5]
