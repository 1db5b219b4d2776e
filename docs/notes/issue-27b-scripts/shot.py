"""Offscreen grab of the trial view with repeat 1 chosen on the demo (issue 27b)."""
import sys
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from brainview.qt.main_window import QtMainWindow

app = QApplication.instance() or QApplication(sys.argv)
win = QtMainWindow(device="cpu", settings=QSettings("/tmp/h27b_shot/bv.ini", QSettings.IniFormat))
win.score_on_open = False
win.resize(1600, 1000)
win.show()


def wait(cond, timeout=300):
    end = time.time() + timeout
    while not cond():
        app.processEvents()
        QTest.qWait(50)
        if time.time() > end:
            raise TimeoutError
win.open_bundle("resources/demo")
wait(lambda: win.session.has_bundle and win.session.can_caption and win.session.ranks_ready)
s, panel, view = win.session, win.repeats_panel, win.trial_view
win.left_tabs.setCurrentWidget(panel)
s.set_trial(49)
wait(lambda: s.caption("stage2") is not None)
mean = (s.caption("stage2"), view.images_title.text())
panel.choice.setFocus()
for _ in range(3):
    QTest.keyClick(panel.choice, Qt.Key_Down)
wait(lambda: s.repeats.repeat == 3)
wait(lambda: s.caption("stage2") is not None and s.caption("stage1") is not None)
wait(lambda: panel.result is not None)
QTest.qWait(300)
print("mean:", mean)
print("repeat 3:", s.caption("stage2"), "|", view.title.text(), "|", view.images_title.text())
print("panel:", panel.status.text())
out = Path(sys.argv[1])
view.grab().save(str(out / "trial_view.png"))
win.splitter.widget(0).grab().save(str(out / "left.png"))
model = win.browser.model
col = model.score_column("image_rank")
print("table ranks of trials 45-52:", [model.data(model.index(r, col)) for r in range(45, 53)])
win.close()
