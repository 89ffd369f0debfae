"""The module's keyboard shortcuts: installed while the module is shown, removed exactly once.

A module widget is left either through ``exit()`` (another module is shown) or, without
``exit()``, through ``cleanup()`` (a reload -- ``slicer.util.reloadScriptedModule`` calls the
old widget's ``cleanup()`` -- or application exit). :class:`ShortcutSet` is called from both
and from ``enter()``; installing always removes the previous set first, so a reload while the
module is shown leaves no duplicate (ambiguous, dead) shortcuts behind.
Plain Python: ``make_shortcut(keys, action)`` creates one (inside Slicer a ``qt.QShortcut``
on the main window, see :func:`qt_shortcut_factory`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List


class ShortcutSet:
    def __init__(self, make_shortcut: Callable[[str, Callable[[], None]], Any]):
        self.make_shortcut = make_shortcut
        self.shortcuts: List[Any] = []

    def install(self, bindings: Dict[str, Callable[[], None]]) -> None:
        """Replace the current shortcuts by ``{key sequence: action}``."""
        self.remove()
        self.shortcuts = [self.make_shortcut(keys, action) for keys, action in bindings.items()]

    def remove(self) -> None:
        """Remove every shortcut installed (safe to call again)."""
        shortcuts, self.shortcuts = self.shortcuts, []
        for shortcut in shortcuts:
            shortcut.setEnabled(False)
            shortcut.activated.disconnect()
            shortcut.setParent(None)
            shortcut.deleteLater()


def qt_shortcut_factory(QShortcut, QKeySequence, parent) -> Callable[[str, Callable[[], None]], Any]:
    """``make_shortcut`` creating ``QShortcut(QKeySequence(keys), parent)`` connected to the
    action (PythonQt's ``qt.QShortcut`` or PySide's, passed in)."""
    def make(keys: str, action: Callable[[], None]):
        shortcut = QShortcut(QKeySequence(keys), parent)
        shortcut.activated.connect(action)
        return shortcut
    return make
