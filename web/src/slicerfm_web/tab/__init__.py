"""One browser tab's process: a trame-slicer scene, its views and the module's Logic."""
