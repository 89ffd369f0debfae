"""A background job's work as data: which engine runs which function on which request.

Features (registration, automatic segmentation) queue an :class:`EngineWork` rather than a
closure over a loaded engine. On one server the job thread calls it, which runs
``run(engine, payload, ctx)`` with the served engine. Because it is data (the engine's
family and name, a module-level function, a picklable payload), a Ray cluster can ship it to
a task on another process or machine that loads the engine there
(:mod:`slicerfm_backend.cluster.jobs`): the same work, not a second implementation.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional


class EngineWork:
    """``run(engine, payload, ctx) -> result dict`` with the engine ``engine`` of ``family``
    (``"segmentation"`` or ``"registration"``). ``engines`` is this server's
    :class:`~slicerfm_backend.engine_core.manager.EngineManager` of that family; it is not
    pickled (a process that receives the work builds its own)."""

    def __init__(self, family: str, engine: str, run: Callable[[Any, Any, Any], Dict[str, Any]], payload: Any,
                 engines: Optional[Any] = None):
        self.family = family
        self.engine = engine
        self.run = run
        self.payload = payload
        self.engines = engines

    def __call__(self, ctx) -> Dict[str, Any]:
        if self.engines is None:
            raise RuntimeError("EngineWork called without an engine manager (use run_with)")
        return self.run_with(self.engines, ctx)

    def run_with(self, engines, ctx) -> Dict[str, Any]:
        """Run with the engine from ``engines`` (loaded there on first use)."""
        return self.run(engines.get(self.engine), self.payload, ctx)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["engines"] = None  # a loaded model does not travel; the receiver loads its own
        return state

    def __repr__(self) -> str:
        return f"EngineWork({self.family}:{self.engine}, {getattr(self.run, '__qualname__', self.run)})"
