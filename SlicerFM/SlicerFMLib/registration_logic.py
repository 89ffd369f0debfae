"""Registration from the module (Qt-free): fixed and moving volumes -> a grid transform node.

1. prepare (main thread): both volumes' voxels and world geometry
   (:func:`SlicerFMLib.volume_io.volume_to_array`), optional masks exported from segments
   onto their volume's grid (:func:`export_mask`), modality per image, engine options;
2. execute (runner): ``slicerfm_client.registration.register`` uploads what the server
   lacks (content ids: a volume already uploaded for segmentation is not sent again),
   submits the job, follows its progress (stage, step) and downloads the displacement
   field -- cancellable through :class:`SlicerFMLib.job_progress.JobProgress`;
3. apply (main thread): a ``vtkMRMLGridTransformNode`` whose transform from parent maps
   fixed points to moving points (:mod:`SlicerFMLib.transform_nodes`), the moving volume
   put under it, and optionally a hardened copy of the moving volume on the fixed grid.

After a run, :meth:`RegistrationLogic.carrySegments` brings a segmentation drawn on the
moving scan onto the fixed scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from .job_progress import INFO, JobProgress, ServerJobLogic
from .segment_io import segment_to_mask
from .transform_nodes import CONVENTION_ATTRIBUTE, carry_segments, place_registration
from .transform_nodes import resample_volume
from .volume_io import volume_modality, volume_to_array

MODALITIES = ("auto", "CT", "MR", "other")
ENGINES = ("classic", "unigradicon", "multigradicon")
SIMILARITIES = ("lncc", "lncc2", "mind")


@dataclass
class RegistrationInput:
    """What the worker thread sends: arrays (K, J, I) with (4, 4) IJK->world RAS matrices,
    masks bool (K, J, I) on their image's grid (or None), modalities "CT"/"MR"/"other"."""

    fixed: np.ndarray
    fixed_ijk_to_ras: np.ndarray
    moving: np.ndarray
    moving_ijk_to_ras: np.ndarray
    fixed_modality: str
    moving_modality: str
    fixed_mask: Optional[np.ndarray] = None
    moving_mask: Optional[np.ndarray] = None
    engine: str = "classic"
    options: Dict[str, Any] = field(default_factory=dict)
    #: MRML ids (fixed volume, moving volume) and output settings, used on apply
    target: Tuple[str, str] = ("", "")
    name: str = "Registration"
    apply: bool = True
    harden: bool = False


@dataclass
class RegistrationOutcome:
    """The scene nodes a run made and the figures a user needs to trust the result:
    ``meta`` holds the server's result meta (``neg_jacobian_fraction``, ``runtime_s``...)."""

    transform_node: Any
    warped_volume: Any = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"transform '{self.transform_node.GetName()}'"]
        folding = self.meta.get("neg_jacobian_fraction")
        if folding is not None:
            parts.append(f"folding {100.0 * float(folding):.3f} % of voxels")
        runtime = self.meta.get("runtime_s")
        if runtime is not None:
            parts.append(f"{float(runtime):.1f} s on the server")
        if self.warped_volume is not None:
            parts.append(f"hardened copy '{self.warped_volume.GetName()}'")
        return ", ".join(parts)


def export_mask(segmentation_node, segment_id: str, volume_node) -> np.ndarray:
    """A segment as a binary labelmap on ``volume_node``'s grid: bool (K, J, I) (nearest
    neighbour from the segment's own grid; the segmentation may sit under a linear
    transform). ValueError for an unknown segment or an empty mask."""
    array, ijk_to_ras = volume_to_array(volume_node)
    mask = segment_to_mask(segmentation_node, segment_id, array.shape[:3], ijk_to_ras)
    if not mask.any():
        name = segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()
        raise ValueError(f"the mask segment '{name}' is empty on the volume "
                         f"'{volume_node.GetName()}': draw it first or choose no mask")
    return mask


def detach_previous_registration(node) -> None:
    """Take ``node`` out from under an earlier SlicerFM registration transform (the
    transform stays in the scene), so that it is registered from where it was drawn."""
    parent = node.GetParentTransformNode()
    if parent is not None and parent.GetAttribute(CONVENTION_ATTRIBUTE):
        grand = parent.GetParentTransformNode()
        node.SetAndObserveTransformNodeID(grand.GetID() if grand is not None else None)


class RegistrationLogic(ServerJobLogic):
    """Register ``movingVolume`` onto ``fixedVolume`` on the connected server.

    Attributes: ``fixedVolume``, ``movingVolume`` (scalar volume nodes); ``fixedMask`` /
    ``movingMask``: None or ``(segmentationNode, segmentID)`` limiting the similarity to
    that segment; ``fixedModality`` / ``movingModality``: "auto" (DICOM attribute), "CT",
    "MR" or "other"; ``engine``: "classic", "unigradicon" or "multigradicon"; ``ioSteps``
    (None = the engine's default, 0 = none), ``similarity`` (None or lncc/lncc2/mind),
    ``affinePrealign``; ``applyToMoving`` (put the moving volume under the transform),
    ``harden`` (also make a resampled copy on the fixed grid), ``outputName``.
    The result of the last run is ``lastOutcome``.
    """

    description = "registration"

    def __init__(self, connection, runner=None):
        super().__init__(connection, runner)
        self.fixedVolume = None
        self.movingVolume = None
        self.fixedMask: Optional[Tuple[Any, str]] = None
        self.movingMask: Optional[Tuple[Any, str]] = None
        self.fixedModality = "auto"
        self.movingModality = "auto"
        self.engine = "classic"
        self.ioSteps: Optional[int] = None
        self.similarity: Optional[str] = None
        self.affinePrealign = False
        self.applyToMoving = True
        self.harden = False
        self.outputName = ""
        self.lastOutcome: Optional[RegistrationOutcome] = None
        self._scene = None

    # -- prepare (main thread) -------------------------------------------------------------

    @staticmethod
    def _modality(choice: str, volume) -> str:
        if choice not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}; got {choice!r}")
        if choice != "auto":
            return choice
        found = volume_modality(volume, default="other")
        return found if found in ("CT", "MR") else "other"

    def _options(self) -> Dict[str, Any]:
        options: Dict[str, Any] = {"affine_prealign": bool(self.affinePrealign)}
        if self.ioSteps is not None:
            if int(self.ioSteps) < 0:
                raise ValueError(f"instance optimisation steps must be 0 or more; got {self.ioSteps}")
            options["io_steps"] = int(self.ioSteps)
        if self.similarity:
            if self.similarity not in SIMILARITIES:
                raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}; "
                                 f"got {self.similarity!r}")
            options["similarity"] = self.similarity
        return options

    def prepare(self) -> RegistrationInput:
        """Read the scene into a RegistrationInput (main thread). ValueError says what is
        missing or wrong (no volumes, the same volume twice, an empty mask...)."""
        if self.fixedVolume is None or self.movingVolume is None:
            raise ValueError("select a fixed and a moving volume")
        if self.fixedVolume is self.movingVolume:
            raise ValueError("the fixed and the moving volume are the same: choose two scans")
        if not self.engine:
            raise ValueError("select a registration engine")
        detach_previous_registration(self.movingVolume)
        fixed, fixed_geometry = volume_to_array(self.fixedVolume, copy=True)
        moving, moving_geometry = volume_to_array(self.movingVolume, copy=True)
        for volume, array in ((self.fixedVolume, fixed), (self.movingVolume, moving)):
            if array.ndim != 3:
                raise ValueError(f"'{volume.GetName()}' has {array.shape[3]} components per "
                                 "voxel: registration needs scalar volumes")
        masks = [export_mask(mask[0], mask[1], volume) if mask else None
                 for mask, volume in ((self.fixedMask, self.fixedVolume),
                                      (self.movingMask, self.movingVolume))]
        name = self.outputName or f"{self.movingVolume.GetName()} to {self.fixedVolume.GetName()}"
        return RegistrationInput(
            fixed=fixed, fixed_ijk_to_ras=fixed_geometry, moving=moving,
            moving_ijk_to_ras=moving_geometry,
            fixed_modality=self._modality(self.fixedModality, self.fixedVolume),
            moving_modality=self._modality(self.movingModality, self.movingVolume),
            fixed_mask=masks[0], moving_mask=masks[1], engine=self.engine,
            options=self._options(),
            target=(self.fixedVolume.GetID(), self.movingVolume.GetID()), name=name,
            apply=bool(self.applyToMoving), harden=bool(self.harden))

    def run(self, onDone=None):
        """Start a registration; ``onDone(outcome)`` on the main thread when it is applied.
        Returns the runner's Task."""
        self._scene = self.fixedVolume.GetScene() if self.fixedVolume is not None else None
        return self._launch(self.prepare(), onDone)

    # -- execute (worker thread) ------------------------------------------------------------

    def _execute(self, payload: RegistrationInput, progress: JobProgress):
        from slicerfm_client import registration as client_registration

        progress.check_cancelled()
        progress.local("uploading the volumes (those the server lacks)")
        return client_registration.register(
            self.client(), payload.fixed, payload.fixed_ijk_to_ras, payload.moving,
            payload.moving_ijk_to_ras, engine=payload.engine,
            fixed_modality=payload.fixed_modality, moving_modality=payload.moving_modality,
            fixed_mask=payload.fixed_mask, moving_mask=payload.moving_mask,
            on_progress=progress.report, cancel_event=progress.cancel_event,
            poll_s=self.pollSeconds, **payload.options)

    # -- apply (main thread) ----------------------------------------------------------------

    def _apply(self, payload: RegistrationInput, result) -> Optional[RegistrationOutcome]:
        vectors, field_geometry, meta = result
        scene = self._scene
        fixed = scene.GetNodeByID(payload.target[0]) if scene is not None else None
        moving = scene.GetNodeByID(payload.target[1]) if scene is not None else None
        if fixed is None or moving is None:
            self._notify("the fixed or moving volume was removed before the registration "
                         "finished; the result was not applied", "warning")
            return None
        node = place_registration(moving, vectors, field_geometry, payload.name,
                                  apply=payload.apply)
        warped = None
        if payload.harden:
            warped = resample_volume(moving, payload.fixed.shape, payload.fixed_ijk_to_ras,
                                     f"{payload.name} (hardened)", transform_node=node)
        outcome = RegistrationOutcome(node, warped, dict(meta))
        self.lastOutcome = outcome
        self._notify(f"Registration done: {outcome.summary()}", INFO)
        return outcome

    # -- carrying segments --------------------------------------------------------------------

    def carrySegments(self, segmentationNode, transformNode=None, segmentIDs: Optional[Iterable[str]] = None,
                      name: Optional[str] = None):
        """A new segmentation on the fixed volume's grid holding ``segmentationNode``'s
        segments (drawn on the moving scan) carried through ``transformNode`` (default:
        the last registration). Returns the new segmentation node."""
        outcome = self.lastOutcome
        transform = transformNode or (outcome.transform_node if outcome else None)
        if transform is None:
            raise ValueError("run a registration first (or choose its transform)")
        if self.fixedVolume is None:
            raise ValueError("select the fixed volume the segments should land on")
        array, geometry = volume_to_array(self.fixedVolume)
        carried = carry_segments(segmentationNode, transform, array.shape[:3], geometry,
                                 name or f"{segmentationNode.GetName()} on "
                                         f"{self.fixedVolume.GetName()}", segmentIDs)
        self._notify(f"Segments carried onto '{self.fixedVolume.GetName()}': "
                     f"'{carried.GetName()}'", INFO)
        return carried
