"""Every file a user hands brainview goes through one reader: a FIFO, a device, a folder or an
oversize file is one message naming it, before anything is read (a FIFO must not hang)."""

from __future__ import annotations

import os
import shutil

import pytest

from brainview.bundle.user_files import UserFileError, read_regular, read_user_json
from brainview.errors import UserError

pytestmark = pytest.mark.timeout(30)


def special_files(tmp_path):
    """A FIFO with no writer, a link to /dev/zero, a folder: the files that hung or ate memory."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / "folder.json"
    folder.mkdir()
    return {"fifo": fifo, "zero": zero, "folder": folder}


@pytest.mark.parametrize("kind,words", [("fifo", "named pipe"), ("zero", "device"), ("folder", "folder")])
def test_special_files_are_refused_before_reading(tmp_path, kind, words):
    path = special_files(tmp_path)[kind]
    with pytest.raises(UserFileError, match=words) as info:
        read_regular(path, 1000)
    assert str(path) in str(info.value)


def test_oversize_and_missing_files_name_the_file(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2001)
    with pytest.raises(UserFileError, match="2,001 bytes, more than the 2,000"):
        read_regular(big, 2000)
    assert read_regular(big, 2001) == b"x" * 2001
    with pytest.raises(UserFileError, match="does not exist"):
        read_regular(tmp_path / "nothing", 10)


def test_json_is_bounded(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100 + "]" * 100)
    with pytest.raises(UserFileError, match="nested more than"):
        read_user_json(deep, 10_000)
    huge = tmp_path / "huge.json"
    huge.write_text("1" + "0" * 30)
    with pytest.raises(UserFileError, match="31-digit integer"):
        read_user_json(huge, 10_000)


def readers():
    """Every reader of a user file, as (name, call)."""
    from brainview.analysis.study import load_study
    from brainview.analysis.caption_files import read_text
    from brainview.state.session_file import load_session

    return {"session": load_session, "study": load_study, "labels": lambda p: read_text(str(p), "labels")}


@pytest.mark.parametrize("reader", ["session", "study", "labels"])
@pytest.mark.parametrize("kind", ["fifo", "zero", "folder"])
def test_every_reader_refuses_special_files(tmp_path, reader, kind):
    path = special_files(tmp_path)[kind]
    with pytest.raises(UserError) as info:
        readers()[reader](path)
    assert "\n" not in str(info.value) and str(path.name) in str(info.value)


def test_roi_files_bundle_files_and_qa_sets_refuse_a_fifo(tmp_path, retrieval_only_bundle):
    from brainview.bundle import open_bundle
    from brainview.cortex.roi_io import load_roi

    fifo = special_files(tmp_path)["fifo"]
    with pytest.raises(UserError, match="named pipe"):
        load_roi(fifo, cortex=None)
    copy = tmp_path / "bundle"
    shutil.copytree(retrieval_only_bundle.path, copy)
    (copy / "test" / "captions.json").unlink()
    os.mkfifo(copy / "test" / "captions.json")
    with pytest.raises(UserError, match="captions.json"):
        open_bundle(copy)
    shutil.rmtree(copy)
    shutil.copytree(retrieval_only_bundle.path, copy)
    os.mkfifo(copy / "test" / "questions.json")  # the QA set
    with pytest.raises(UserError, match="questions.json"):
        open_bundle(copy)


@pytest.mark.parametrize("option", ["--labels", "--versus"])
def test_cli_label_files_that_are_fifos_exit_2(tmp_path, capsys, retrieval_only_bundle, option):
    from brainview.cli import main

    fifo = special_files(tmp_path)["fifo"]
    argv = (["classify", str(retrieval_only_bundle.path), "--labels", f"@{fifo}"] if option == "--labels" else
            ["localize", str(retrieval_only_bundle.path), "a dog", "--versus", f"@{fifo}"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("named pipe" in err or "names none" in err)
