"""The core never imports Qt: checked statically (import-linter) and at run time."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_modules_import_without_qt():
    code = ("import sys; import brainview.bundle, brainview.decoding.decoder, brainview.decoding.retrieval, "
            "brainview.decoding.ridge, brainview.decoding.synthetic, brainview.cli; "
            "import brainview.cortex, brainview.session; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'vtkmodules', 'pyqtgraph', 'superqt')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_opening_a_bundle_does_not_import_torch():
    code = "import sys, brainview.bundle; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
