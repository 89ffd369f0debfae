"""Progress reports and cancellation from inside long SimpleITK filters.

SimpleITK calls a Python command on every iteration; the command forwards it to the job's
``progress(stage, done, total)``. When that raises (the user cancelled), the command asks
the filter to abort and the exception is raised again once the filter has stopped.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from ..base import Progress

T = TypeVar("T")


def run_reporting(process, stage: str, total: int, progress: Progress, execute: Callable[[], T],
                  start: int = 0) -> T:
    """``execute()`` (which runs ``process``, a SimpleITK filter or registration method),
    reporting each iteration as ``progress(stage, start + n, total)``."""
    import SimpleITK as sitk

    state = {"done": start, "error": None}

    def on_iteration() -> None:
        if state["error"] is not None:
            return
        state["done"] += 1
        try:
            progress(stage, min(state["done"], total), total)
        except BaseException as error:  # JobCancelled: stop the filter, re-raise below
            state["error"] = error
            process.Abort()

    process.AddCommand(sitk.sitkIterationEvent, on_iteration)
    result = None
    try:
        result = execute()
    except RuntimeError:
        if state["error"] is None:
            raise
    finally:
        process.RemoveAllCommands()
    if state["error"] is not None:  # cancelled (also when the filter ended anyway)
        raise state["error"]
    return result
