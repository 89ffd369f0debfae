"""The engine interface: what every segmentation engine declares and implements.

An engine turns the prompts of one segment (points and boxes in voxel coordinates of the
image, numpy ``(k, j, i)`` order) into a binary mask inside a region of interest. The
server owns everything else: sessions, undo history, locked segments, the changed bounding
box and the transfer. An engine never sees other segments and cannot write outside the
region it returns; the server applies segment locks *after* the engine, so no engine can
bypass them.

Boxes (:data:`slicerfm_client.geometry.BBox`, start inclusive, stop exclusive, (k, j, i))
and their helpers (``tight_bbox``, ``bbox_slices``, ...) live in :mod:`slicerfm_client.geometry`,
shared with the client and the Slicer module. Engines live one package each in this package
(``classic/``, ``sam_med3d/``, ``vista3d/``); heavy imports (torch, medim, monai) happen
inside ``load()`` or the methods that need them, never at module import, so listing engines
is cheap. The automatic seam (:class:`AutoSegmentation`) is declared below the interactive one.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from slicerfm_client import protocol
from slicerfm_client.geometry import BBox

from ..engine_core.base import EngineBase, Progress, StepGuard


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can do, declared without loading it."""

    prompt_kinds: Tuple[str, ...]
    modalities: Tuple[str, ...]
    needs_weights: bool
    devices: Tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Prompt:
    """One user prompt in voxel coordinates of the image, numpy ``(k, j, i)`` order.

    ``kind == "point"``: ``point_kji`` is the clicked voxel (float; integers are voxel
    centres) and ``positive`` says whether it is inside (True) or outside (False) the object.
    ``kind == "box"``: ``box_kji`` holds two opposite corners ``((k0, j0, i0), (k1, j1, i1))``,
    both inclusive voxel coordinates; boxes are always positive.
    """

    kind: str
    positive: bool = True
    point_kji: Optional[Tuple[float, float, float]] = None
    box_kji: Optional[Tuple[Tuple[float, float, float], Tuple[float, float, float]]] = None


@dataclass
class ImageData:
    """An uploaded image as engines see it.

    ``array`` has shape ``(K, J, I)`` in numpy order and must not be modified.
    ``spacing_kji`` is the voxel size in mm along (k, j, i). ``ijk_to_ras`` is the 4x4 matrix
    from homogeneous ``(i, j, k, 1)`` to RAS mm. ``modality`` is one of
    ``protocol.MODALITIES``: "CT", "MR" or "other" (also when not known).
    """

    image_id: str
    array: np.ndarray
    spacing_kji: Tuple[float, float, float]
    ijk_to_ras: np.ndarray
    modality: str = protocol.MODALITY_OTHER


class MaskView(abc.ABC):
    """Read-only access to a segment's current mask without materialising the full volume."""

    @abc.abstractmethod
    def region(self, bbox: BBox) -> np.ndarray:
        """Boolean array of shape ``bbox`` size with the segment's voxels inside ``bbox``."""

    @abc.abstractmethod
    def bbox(self) -> Optional[BBox]:
        """Tight bounding box of the segment's voxels, or None when it is empty."""


@dataclass
class SegmentationRequest:
    """Everything an engine gets for one interaction on one segment.

    ``prompts`` holds all prompts of this segment since its last reset, oldest first; the
    last one is the prompt the user just gave. ``previous`` is the segment's mask before
    this interaction (already without locked voxels of other segments). ``cache`` is a dict
    private to this engine and this image, kept between interactions (e.g. embeddings).
    ``options`` holds engine-specific fields of the interaction (e.g. vista3d's ``label``:
    the class the points are on); engines ignore what they do not know.
    """

    image: ImageData
    prompts: List[Prompt]
    previous: MaskView
    cache: Dict[str, Any] = field(default_factory=dict)
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class EngineResult:
    """The engine's answer: the segment inside ``bbox`` becomes ``mask``.

    ``mask`` is boolean with the shape of ``bbox``; voxels outside ``bbox`` keep their
    previous value. ``timings_ms`` may break the engine's own time into named stages (ms
    only); ``counts`` holds other figures of the run (e.g. ``roi_voxels``), which
    ``Server-Timing`` carries as descriptions, never as durations.
    """

    bbox: BBox
    mask: np.ndarray
    timings_ms: Dict[str, float] = field(default_factory=dict)
    counts: Dict[str, float] = field(default_factory=dict)


class Engine(EngineBase):
    """Base class of segmentation engines. Subclasses set ``name``, ``capabilities``
    (:class:`EngineCapabilities`) and, when they take options, ``option_types``; see
    :mod:`slicerfm_backend.engine_core.base` for what every engine has (device, options,
    ``checkpoint()``, ``weights_status()``, ``load()``)."""

    capabilities: ClassVar[EngineCapabilities]
    #: True for the slice engines (2-D networks, docs/PROTOCOL.md section 5.1): a front end
    #: sends a box drawn on a slice view as a slice box and ``slice_axis`` with every click,
    #: and follows the propagation job the interaction answers with
    slice_prompts: ClassVar[bool] = False

    def describe(self) -> Dict[str, Any]:
        row = super().describe()
        row["prompt_kinds"] = list(self.capabilities.prompt_kinds)
        row["slice_prompts"] = bool(self.slice_prompts)
        row["automatic"] = isinstance(self, AutoSegmentation)
        return row

    @abc.abstractmethod
    def segment(self, request: SegmentationRequest) -> EngineResult:
        """Segment the object the prompts describe; see :class:`SegmentationRequest`.
        Raise :class:`slicerfm_backend.errors.EngineError` with a message for the user
        when the request cannot be served."""


ClassItem = Union[str, int]
"""A class as a user names it: its name (``"liver"``) or its id."""


class AutoSegmentation(abc.ABC):
    """The automatic-segmentation seam: a segmentation engine that also labels a whole image
    by class, as a background job (``POST /api/segment/auto``, ``slicerfm-backend segment``).
    An engine declares it by deriving from it as well: ``class MyEngine(Engine,
    AutoSegmentation)``; the service checks ``isinstance``, the route asks the class for its
    class list, and nothing is loaded before a job runs.
    """

    @classmethod
    @abc.abstractmethod
    def classes(cls) -> List[Dict[str, Any]]:
        """The classes a user can pick, without loading anything: one dict per class with at
        least ``id`` (int), ``name``, ``group`` (for grouping in pickers) and ``color``
        (``[r, g, b]``, 0..1); engines may add their own fields."""

    @classmethod
    @abc.abstractmethod
    def class_ids(cls, classes: Optional[Sequence[ClassItem]], everything: bool = False) -> List[int]:
        """The class ids one run segments: ``classes`` (names or ids, as a user gives them;
        group classes expanded) or, with ``everything``, the engine's whole set. ValueError
        naming the unknown or unusable item."""

    @abc.abstractmethod
    def segment_auto(self, image: ImageData, class_ids: Sequence[int], progress: Progress,
                     step: StepGuard = contextlib.nullcontext) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Label the whole image: ``(labels, meta)``. ``labels`` is uint8 ``(K, J, I)`` on the
        image's grid (class ids, 0 = none); ``meta`` has at least ``labels`` (the dictionary
        of the requested ids: ``{str(id): {name, color, group}}``), ``classes`` (the ids run)
        and ``not_computed`` (``{"voxels": n, ...}``: voxels left at 0 without being
        computed). ``progress(stage, done, total)`` is called per stage and step and raises
        to cancel; ``step()`` wraps every network forward (a device scheduler slot in a job).
        Raise :class:`slicerfm_backend.errors.EngineError` with a message for the user when
        the image cannot be segmented."""

    def estimate_auto_s(self, image: ImageData, class_ids: Sequence[int]) -> Optional[float]:
        """Expected wall time of :meth:`segment_auto` in seconds on this engine's device
        (None when nothing was measured for it); shown before the job starts."""
        return None
