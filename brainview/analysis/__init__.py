"""What the command line, the app state and the GUI share: evaluating a bundle or a study
(:mod:`.evaluation`), studies and stimulus matching (:mod:`.study`), CSV tables (:mod:`.tables`) and
figure content (:mod:`.figures`). Imports the core (``decoding``, ``cortex``, ``bundle``), never the app
state, Qt or the command line.
"""
