"""One interactive operation on a segment (a click, a box, undo/redo/reset/lock): plain
data in, client calls, plain data out. (Not a server *job*: those are the background
registration and automatic segmentation runs of :mod:`SlicerFMLib.job_progress`.)

An :class:`Interaction` is prepared on the main thread from MRML (volume voxels, prompts in
voxel coordinates, seeds of segments); :func:`execute_interaction` runs on the runner (the
worker thread) and touches only the network (``SlicerFMClient``) -- never MRML, never Qt;
the :class:`InteractionOutcome` is applied to the scene on the main thread again
(:class:`SlicerFMLib.interactive_logic.InteractiveSegmentationLogic`).

Order inside an interaction: reconnect (recovery only) -> upload the image if the server
lacks it (content id: hash of voxels + geometry, so an unchanged volume is never sent twice)
-> attach it -> seed segments whose server copy is stale -> the operation itself -> settle
the segment's propagation the operation superseded (slice engines, see
:mod:`SlicerFMLib.propagation_follow`). ``PROPAGATED`` is the change of a finished
propagation job, already downloaded: it only travels through the same queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from slicerfm_client import errors
from slicerfm_client.client import MaskUpdate

from .connection import Connection
from .propagation_follow import settle_propagation

INTERACT, UNDO, REDO, RESET, LOCK, SYNC = "interact", "undo", "redo", "reset", "lock", "sync"
PROPAGATED = "propagated"
OPERATIONS = (INTERACT, UNDO, REDO, RESET, LOCK, SYNC, PROPAGATED)
#: operations that change their segment on the server (and so supersede its propagation)
CHANGES_SEGMENT = (INTERACT, UNDO, REDO, RESET)


@dataclass
class ImagePayload:
    """The volume to upload: ``array`` (K, J, I) copy of the voxels, ``ijk_to_ras`` (4, 4)
    voxel (i, j, k, 1) -> world RAS mm, ``modality`` "CT", "MR" or "unknown"."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    modality: str = "unknown"


@dataclass
class SeedPayload:
    """A segment to send as a seed when the server's copy is stale.

    bbox_kji ([[k0, j0, i0], [k1, j1, i1]], stop exclusive) and ``block`` (uint8 of that
    shape) are the segment on the volume grid. ``synced_generation``: the connection
    generation in which the server last held it; ``dirty``: Slicer's copy changed since.
    ``locked``: lock it on the server after seeding.
    """

    name: str
    bbox_kji: list
    block: np.ndarray
    synced_generation: int
    dirty: bool
    empty: bool
    locked: bool = False

    def needed(self, generation: int) -> bool:
        if self.dirty:
            return True
        return self.synced_generation != generation and (not self.empty or self.locked)


@dataclass
class Interaction:
    """One interactive operation on ``segment`` (its server name).

    op: one of OPERATIONS. prompt: the interact prompt (``point_kji`` / ``box_kji``,
    voxel coordinates of the uploaded image). label: for INTERACT, the class the points are
    on (class-aware engines such as vista3d), or None. slice_options: for INTERACT with a
    slice engine, ``slice_axis`` / ``propagate`` / ``max_slices`` (docs/PROTOCOL.md 5.1).
    locked: for LOCK, lock or unlock. settle: the job id of the segment's propagation this
    operation supersedes (settled after it), or None. prior: a finished propagation's change
    to apply before this operation's (downloaded already); for PROPAGATED, its change.
    image: voxels to upload, or None to re-use ``image_id`` (already on the server).
    request: (method name, kwargs) the Logic can prepare again, e.g. after a lost session.
    """

    op: str
    segment: str
    description: str
    engine: str = "classic"
    prompt: Optional[Dict[str, Any]] = None
    label: Optional[int] = None
    slice_options: Dict[str, Any] = field(default_factory=dict)
    locked: bool = True
    image: Optional[ImagePayload] = None
    image_id: Optional[str] = None
    seeds: List[SeedPayload] = field(default_factory=list)
    reconnect: bool = False
    recovering: bool = False
    target: tuple = ()
    request: tuple = ()
    settle: Optional[str] = None
    prior: Optional[MaskUpdate] = None
    settled: bool = False       # set by the worker once ``settle`` was looked at
    watch: Any = None           # the propagation watch this operation took over (main thread)


@dataclass
class InteractionOutcome:
    """What came back for an interaction: the segment change (None for LOCK/SYNC), the image id now attached,
    the connection generation the server state belongs to, and the seeds that were sent.
    ``prior``: a propagation's change the server committed before this operation, to be
    applied before ``update``."""

    interaction: Interaction
    update: Optional[MaskUpdate]
    image_id: str
    generation: int
    seeded: List[str] = field(default_factory=list)
    segment_info: Optional[Dict[str, Any]] = None
    prior: Optional[MaskUpdate] = None


def _send_seed(client, seed: SeedPayload) -> None:
    """Seed; a segment the server holds locked is unlocked for it (and locked again when
    ``seed.locked``)."""
    try:
        client.seed(seed.name, seed.block, seed.bbox_kji)
    except errors.SegmentLockedError:
        client.lock(seed.name, False)
        client.seed(seed.name, seed.block, seed.bbox_kji)
    if seed.locked:
        client.lock(seed.name, True)


def execute_interaction(connection: Connection, interaction: Interaction) -> InteractionOutcome:
    """Run ``interaction`` against the connection's server (worker thread). Raises the
    client's typed errors, e.g. ``SessionExpiredError`` after a server restart."""
    if connection.client is None:
        raise errors.ConfigurationError("not connected: connect to a SlicerFM backend first "
                                        "(Connection panel)")
    client = connection.client
    if interaction.op == PROPAGATED:       # downloaded by the follower: nothing to send
        return InteractionOutcome(interaction, interaction.prior, interaction.image_id,
                                  connection.generation)
    if interaction.reconnect:
        connection.reconnect()
    if interaction.image is not None:
        image = interaction.image
        image_id = client.upload_image(image.array, image.ijk_to_ras, image.modality)
    elif interaction.image_id is not None:
        image_id = interaction.image_id
    else:
        raise errors.ConfigurationError("no image to work on: select a source volume")
    connection.attach(image_id)
    generation = connection.generation
    seeded = []
    for seed in interaction.seeds:
        if seed.needed(generation):
            _send_seed(client, seed)
            seeded.append(seed.name)
    update, info = None, None
    if interaction.op == INTERACT:
        extra = dict(interaction.slice_options)
        if interaction.label is not None:
            extra["label"] = interaction.label
        update = client.interact(interaction.segment, interaction.prompt, engine=interaction.engine, **extra)
    elif interaction.op == UNDO:
        update = client.undo(interaction.segment)
    elif interaction.op == REDO:
        update = client.redo(interaction.segment)
    elif interaction.op == RESET:
        update = client.reset(interaction.segment)
    elif interaction.op == LOCK:
        info = client.lock(interaction.segment, interaction.locked)
    elif interaction.op != SYNC:
        raise ValueError(f"unknown SlicerFM operation {interaction.op!r}")
    prior = interaction.prior
    if interaction.settle is not None:
        prior = settle_propagation(client, interaction.settle, discard=interaction.segment in seeded)
        interaction.settled = True
    elif interaction.segment in seeded:
        prior = None            # the seed replaced what the propagation had written
    return InteractionOutcome(interaction, update, image_id, generation, seeded, info, prior)
