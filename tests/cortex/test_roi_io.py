import json
import os

import nibabel as nib
import numpy as np
import pytest

from brainview.cortex import (Cortex, RoiSelection, export_gifti_label, export_label, import_surface_roi, load_roi,
                              save_roi, selection_vertices)
from brainview.errors import UserError
from tests.factories import make_bundle


@pytest.fixture(scope="module")
def cortex(tmp_path_factory):
    return Cortex.from_bundle(make_bundle(tmp_path_factory.mktemp("b") / "bundle", n_voxels=60))


@pytest.fixture
def selection(cortex):
    selection = RoiSelection(cortex)
    selection.set_atlas_rois(["V1"])
    selection.paint(cortex.brush_vertices("rh", 3, 25.0))
    selection.paint([0], erase=True)
    return selection


def test_json_roundtrip_is_exact_and_leaves_no_temporary_file(tmp_path, cortex, selection):
    path = save_roi(tmp_path / "roi.json", selection, "test bundle")
    assert os.listdir(tmp_path) == ["roi.json"]
    document = json.loads(path.read_text())
    assert document["format"] == "brainview-roi" and document["version"] == 1 and document["n_voxels"] == 60
    assert document["bundle"] == "test bundle" and document["voxels"] == selection.voxels().tolist()
    assert document["vertices"]["lh"] == [] and len(document["vertices"]["rh"]) > 0
    roi = load_roi(path, cortex)
    fresh = RoiSelection(cortex)
    roi.apply_to(fresh)
    np.testing.assert_array_equal(fresh.voxels(), selection.voxels())
    np.testing.assert_array_equal(fresh.painted_vertices(), selection.painted_vertices())
    assert roi.bundle == "test bundle"
    fresh.undo()
    assert fresh.is_empty()


@pytest.mark.parametrize("change, message", [
    ({"n_voxels": 61}, "with 61 voxels, but this bundle has 60"),
    ({"voxels": [1, 60]}, "outside 0..59"),
    ({"voxels": [-1]}, "outside 0..59"),
    ({"voxels": [1.5]}, "list of integers"),
    ({"vertices": {"lh": [162]}}, "outside 0..161"),
    ({"vertices": {"xx": []}}, "keys"),
    ({"format": "other"}, "not a brainview ROI file"),
    ({"version": 9}, "unknown version 9"),
])
def test_invalid_json_is_a_user_error(tmp_path, cortex, selection, change, message):
    path = save_roi(tmp_path / "roi.json", selection, "b")
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(UserError, match=message):
        load_roi(path, cortex)


def test_unreadable_files_are_user_errors(tmp_path, cortex):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable ROI file"):
        load_roi(tmp_path / "bad.json", cortex)
    with pytest.raises(UserError, match="no ROI file"):
        load_roi(tmp_path / "missing.json", cortex)


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch, selection):
    path = tmp_path / "roi.json"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UserError, match="cannot write .*No space left"):
        save_roi(path, selection, "b")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["roi.json"]


def test_freesurfer_label_roundtrip_through_nibabel(tmp_path, cortex, selection):
    path = export_label(tmp_path / "rh.brainview.label", selection, "rh")
    vertices, values = nib.freesurfer.io.read_label(str(path), read_scalars=True)
    expected = selection_vertices(selection, "rh")
    np.testing.assert_array_equal(vertices, expected)
    assert (values == 1).all()
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#!ascii label") and int(lines[1]) == len(expected)
    x, y, z = map(float, lines[2].split()[1:4])
    np.testing.assert_allclose([x, y, z], cortex.hemis["rh"].pial[expected[0]], atol=1e-3)
    roi = import_surface_roi(path, cortex)
    np.testing.assert_array_equal(roi.vertices["rh"], expected)
    np.testing.assert_array_equal(roi.voxels, cortex.vertices_to_voxels(cortex.to_global("rh", expected)))


def test_gifti_label_roundtrip_through_nibabel(tmp_path, cortex, selection):
    path = export_gifti_label(tmp_path / "roi.lh.label.gii", selection, "lh")
    image = nib.load(str(path))
    array = image.darrays[0]
    assert array.intent == nib.nifti1.intent_codes["NIFTI_INTENT_LABEL"]
    assert array.data.shape == (162,) and array.data.dtype == np.int32
    np.testing.assert_array_equal(np.flatnonzero(array.data), selection_vertices(selection, "lh"))
    assert image.labeltable.get_labels_as_dict() == {0: "???", 1: "brainview ROI"}
    assert image.meta["AnatomicalStructurePrimary"] == "CortexLeft"
    renamed = path.rename(tmp_path / "no_hemisphere_in_name.label.gii")  # the hemisphere comes from the metadata
    roi = import_surface_roi(renamed, cortex)
    np.testing.assert_array_equal(roi.vertices["lh"], selection_vertices(selection, "lh"))


def test_surface_import_validation(tmp_path, cortex, selection):
    path = export_label(tmp_path / "roi.label", selection, "rh")
    with pytest.raises(UserError, match="cannot tell the hemisphere"):
        import_surface_roi(path, cortex)
    assert import_surface_roi(path, cortex, hemi="rh").vertices["rh"].size > 0
    with pytest.raises(UserError, match="hemisphere must be one of"):
        import_surface_roi(path, cortex, hemi="left")
    wrong = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.ones(10, dtype=np.float32))])
    nib.save(wrong, str(tmp_path / "lh.wrong.shape.gii"))
    with pytest.raises(UserError, match="has 10 values but lh has 162 vertices"):
        import_surface_roi(tmp_path / "lh.wrong.shape.gii", cortex)
    (tmp_path / "lh.broken.label").write_text("garbage\n")
    with pytest.raises(UserError, match="not a readable label file"):
        import_surface_roi(tmp_path / "lh.broken.label", cortex)
    (tmp_path / "lh.roi.txt").write_text("1")
    with pytest.raises(UserError, match="expected a FreeSurfer .label"):
        import_surface_roi(tmp_path / "lh.roi.txt", cortex)
    big = tmp_path / "lh.big.label"
    big.write_text("#!ascii label\n1\n500 0 0 0 1\n")
    with pytest.raises(UserError, match="outside 0..161"):
        import_surface_roi(big, cortex)


def test_an_empty_selection_exports_and_imports_empty(tmp_path, cortex):
    empty = RoiSelection(cortex)
    roi = import_surface_roi(export_label(tmp_path / "lh.empty.label", empty, "lh"), cortex)
    assert roi.vertices["lh"].size == 0 and roi.voxels.size == 0
    assert load_roi(save_roi(tmp_path / "e.json", empty, "b"), cortex).voxels.size == 0


def test_saving_keeps_links_and_permissions_and_leaves_nothing_on_ctrl_c(tmp_path, monkeypatch, selection):
    import stat

    umask = os.umask(0)
    os.umask(umask)
    fresh = save_roi(tmp_path / "fresh.json", selection, "b")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o640)
    save_roi(kept, selection, "b")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    target = tmp_path / "elsewhere" / "real.json"
    target.parent.mkdir()
    target.write_text("old")
    (tmp_path / "link.json").symlink_to(target)
    save_roi(tmp_path / "link.json", selection, "b")
    assert (tmp_path / "link.json").is_symlink() and json.loads(target.read_text())["format"] == "brainview-roi"

    def interrupted(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        save_roi(kept, selection, "other")
    assert sorted(os.listdir(tmp_path)) == before and json.loads(kept.read_text())["bundle"] == "b"


def test_an_lh_rh_pair_is_written_as_a_group(tmp_path, monkeypatch, selection):
    from brainview.cortex import export_surface_pair

    for hemi in ("lh", "rh"):
        (tmp_path / f"{hemi}.roi.label").write_text("old")
    real_fsync, calls = os.fsync, []

    def fail_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fail_second)
    with pytest.raises(UserError, match="No space left"):
        export_surface_pair(tmp_path / "roi.label", selection)
    assert sorted(os.listdir(tmp_path)) == ["lh.roi.label", "rh.roi.label"]
    assert all((tmp_path / f"{h}.roi.label").read_text() == "old" for h in ("lh", "rh"))  # neither changed
    monkeypatch.setattr(os, "fsync", real_fsync)
    written = export_surface_pair(tmp_path / "roi.label", selection)
    assert [p.name for p in written] == ["lh.roi.label", "rh.roi.label"]


@pytest.mark.parametrize("text, message", [
    ("[" * 100000 + "]" * 100000, "nested more than"),
    ('{"format": "brainview-roi", "version": 1, "n_voxels": 60, "voxels": [9223372036854775808]}', "outside 0..59"),
    ('{"format": "brainview-roi", "version": 1, "n_voxels": 60, "voxels": [' + "9" * 4301 + "]}", "digit integer"),
    ('{"format": "brainview-roi", "version": 1, "n_voxels": 60, "voxels": [1e400]}', "list of integers"),
])
def test_hostile_roi_json_is_a_user_error(tmp_path, cortex, text, message):
    (tmp_path / "roi.json").write_text(text)
    with pytest.raises(UserError, match=message):
        load_roi(tmp_path / "roi.json", cortex)


def test_hostile_gifti_is_refused_before_decoding(tmp_path, cortex):
    n = cortex.hemis["lh"].n_vertices
    nan = np.zeros(n, dtype=np.float32)
    nan[3] = np.nan
    nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(nan)]), str(tmp_path / "lh.nan.func.gii"))
    with pytest.raises(UserError, match="not finite"):
        import_surface_roi(tmp_path / "lh.nan.func.gii", cortex)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(n, dtype=np.float32).tobytes())
    external = nib.gifti.GiftiDataArray(np.zeros(n, dtype=np.float32), encoding="GIFTI_ENCODING_EXTBIN")
    external.ext_fname, external.ext_offset = str(secret), 0
    xml = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.zeros(n, dtype=np.float32))]).to_xml().decode()
    xml = xml.replace('Encoding="GZipBase64Binary"', f'Encoding="ExternalFileBinary" ExternalFileName="{secret}" '
                                                      'ExternalFileOffset="0"')
    (tmp_path / "lh.ext.func.gii").write_text(xml)
    with pytest.raises(UserError, match="ExternalFileBinary"):
        import_surface_roi(tmp_path / "lh.ext.func.gii", cortex)
    bomb = xml.replace('Encoding="ExternalFileBinary"', 'Encoding="GZipBase64Binary"').replace(
        f'Dim0="{n}"', 'Dim0="1000000000"')
    (tmp_path / "lh.bomb.func.gii").write_text(bomb)
    with pytest.raises(UserError, match="announces an array"):
        import_surface_roi(tmp_path / "lh.bomb.func.gii", cortex)
