"""The ``brainview`` command line: the parser in :mod:`.main`, one module per family of commands
(:mod:`.bundle`, :mod:`.evaluation`, :mod:`.language`, :mod:`.study`, :mod:`.exports`, :mod:`.desktop`)
and the printing helpers they share (:mod:`.output`). Above every other package; nothing imports it.
"""

from brainview.cli.main import main

__all__ = ["main"]
