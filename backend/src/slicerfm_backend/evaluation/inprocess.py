"""Drive an engine in-process, the way the server does, for the click simulator and tests.

``InProcessSession`` keeps one segment's prompts (oldest first), its mask as a
:class:`SparseMask` and the engine's per-image cache; ``interact`` has the signature
``simulate_clicks`` expects and returns the engine's changed ``(bbox, mask)``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..engines.base import BBox, Engine, EngineResult, ImageData, Prompt, SegmentationRequest
from ..sparse_mask import SparseMask


class InProcessSession:
    """One image and one segment, segmented by ``engine`` without a server."""

    def __init__(
        self,
        engine: Engine,
        array: np.ndarray,
        spacing_kji: Sequence[float],
        modality: str = "other",
        cache: Optional[Dict[str, Any]] = None,
    ):
        self.engine = engine
        self.image = ImageData(
            image_id="inprocess",
            array=array,
            spacing_kji=tuple(float(s) for s in spacing_kji),
            ijk_to_ras=np.diag([*reversed([float(s) for s in spacing_kji]), 1.0]),
            modality=modality,
        )
        self.cache: Dict[str, Any] = {} if cache is None else cache
        self.mask = SparseMask(array.shape)
        self.prompts: List[Prompt] = []
        self.results: List[EngineResult] = []

    def reset(self) -> None:
        """Forget the prompts and the mask (the cache, which belongs to the image, stays)."""
        self.prompts = []
        self.mask.clear()
        self.results = []

    def prompt(self, prompt: Prompt, options: Optional[Dict[str, Any]] = None) -> EngineResult:
        """Add one prompt, run the engine on all prompts and apply its answer to the mask;
        ``options`` are the interaction's engine-specific fields (e.g. ``slice_axis``)."""
        self.prompts.append(prompt)
        result = self.engine.segment(self._request(options))
        self.mask.set_region(result.bbox, result.mask)
        self.results.append(result)
        return result

    def propagate(self, options: Optional[Dict[str, Any]] = None, progress=None):
        """For engines that propagate (the slice engines): carry the last prompt's result to
        the neighbouring slices, as the server's propagation job does, and apply it. Returns
        the engine's ``Propagation`` (result and summary), or None when nothing propagates."""
        plan = self.engine.plan_propagation(self._request(options))
        if plan is None:
            return None
        done = self.engine.propagate(plan, progress=progress)
        self.mask.set_region(done.result.bbox, done.result.mask)
        self.results.append(done.result)
        return done

    def _request(self, options: Optional[Dict[str, Any]]) -> SegmentationRequest:
        return SegmentationRequest(image=self.image, prompts=list(self.prompts), previous=self.mask,
                                   cache=self.cache, options=dict(options or {}))

    def interact(self, point_kji: Tuple[int, int, int], positive: bool) -> Tuple[BBox, np.ndarray]:
        """A click, as ``simulate_clicks`` calls it; returns the engine's ``(bbox, mask)``."""
        result = self.prompt(
            Prompt(kind="point", positive=bool(positive), point_kji=tuple(float(v) for v in point_kji))
        )
        return result.bbox, result.mask
