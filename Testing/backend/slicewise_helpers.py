"""Helpers for the slice engines' tests: segment-anything networks with random weights at a
small input size, stand-in networks, and volumes with known objects."""

from functools import partial

import numpy as np

from slicerfm_backend.engines.base import EngineCapabilities
from slicerfm_backend.engines.medsam.engine import MedSamEngine


def small_sam(image_size: int = 128, seed: int = 0):
    """segment-anything's ``Sam`` with the ViT-B encoder (depth 12, width 768, 12 heads,
    global attention in blocks 2/5/8/11) and the released prompt encoder and mask decoder,
    random weights, for a square input of ``image_size`` pixels instead of 1024: the same
    code on 1/64 of the pixels (the package builds 1024 only; its modules take the size)."""
    import torch

    from slicerfm_backend.engines.slicewise.sam_network import modules

    _, modeling = modules()
    torch.manual_seed(seed)
    grid = image_size // 16
    model = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=12, embed_dim=768, img_size=image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=12, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=[2, 5, 8, 11], window_size=14,
            out_chans=256),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size),
            mask_in_chans=16),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )
    # The encoder's position embedding starts at zero; give it values so that it matters.
    with torch.no_grad():
        model.image_encoder.pos_embed.normal_(0, 0.02)
    return model.eval()


class ThresholdNet:
    """Stand-in for a slice network (no torch): the object is every bright connected
    component (grey level > 127) that meets the box, plus the bright components under
    positive points, minus those under negative points.

    It goes through the engine's real path -- intensity mapping, frames (the box travels to
    input pixels and back), the embedding cache, propagation -- and records its encoder
    batches. ``keep_aspect`` gives SAM's frame (longest side 1024, physical aspect) instead of
    MedSAM's (the whole 1024 square).
    """

    precision = "fp32"

    def __init__(self, input_size: int = 1024, keep_aspect: bool = False):
        self.input_size = input_size
        self.keep_aspect = keep_aspect
        self.batches = []
        self.decodes = 0

    @property
    def encoded(self) -> int:
        return sum(self.batches)

    def prepare(self, pixels, spacing):
        from slicerfm_backend.engines.sam.model import resized_shape
        from slicerfm_backend.engines.slicewise.frame import Frame

        size = self.input_size
        resized = resized_shape(pixels.shape, spacing, size) if self.keep_aspect else (size, size)
        return pixels.copy(), Frame(tuple(pixels.shape), resized, size)

    def encode(self, inputs):
        self.batches.append(len(inputs))
        return [np.asarray(x) for x in inputs]

    def decode_logits(self, embedding, box, coords, labels, multimask=False):
        self.decodes += 1
        return embedding, box, coords, labels

    def to_mask(self, logits, frame):
        from scipy import ndimage

        pixels, box, coords, labels = logits
        components, _ = ndimage.label(pixels > 127)
        keep = set()
        sr, sc = frame.scale
        if box is not None:
            r0, r1 = int(np.ceil(box[1] / sr - 1e-6)), int(np.floor(box[3] / sr + 1e-6))
            c0, c1 = int(np.ceil(box[0] / sc - 1e-6)), int(np.floor(box[2] / sc + 1e-6))
            keep |= set(np.unique(components[max(r0, 0):r1 + 1, max(c0, 0):c1 + 1]).tolist())
        drop = set()
        for (x, y), label in zip(coords if coords is not None else [], labels if labels is not None else []):
            r = min(int(np.floor(y / sr + 0.5)), pixels.shape[0] - 1)
            c = min(int(np.floor(x / sc + 0.5)), pixels.shape[1] - 1)
            (keep if label == 1 else drop).add(int(components[r, c]))
        keep -= drop | {0}
        return np.isin(components, sorted(keep)) if keep else np.zeros(pixels.shape, bool)


def tube_volume(shape=(30, 40, 50), centre=(20, 25), first=5, last=24, peak=14):
    """int16 CT-like volume (HU): background 0, a bright tube (300 HU) along k whose disc of
    radius ``2 + 0.4 * (10 - |k - peak|)`` around ``centre`` (j, i) exists on slices
    ``first..last`` only: it narrows towards both ends and ends."""
    volume = np.zeros(shape, np.int16)
    jj, ii = np.mgrid[: shape[1], : shape[2]]
    for k in range(first, last + 1):
        radius = 2 + 0.4 * (10 - abs(k - peak))
        volume[k][(jj - centre[0]) ** 2 + (ii - centre[1]) ** 2 <= radius ** 2] = 300
    return volume


def disc_box(volume, k):
    """Inclusive corners ``((k, j0, i0), (k, j1, i1))`` of the bright pixels on slice ``k``."""
    jj, ii = np.nonzero(volume[k] > 150)
    return (k, int(jj.min()), int(ii.min())), (k, int(jj.max()), int(ii.max()))


class GatedThresholdNet(ThresholdNet):
    """ThresholdNet whose decodes on a job thread (propagation) wait while ``release`` is
    clear, after setting ``entered``: tests hold a propagation job running deterministically."""

    release = None  # threading.Event, set by the test module
    entered = None

    def decode_logits(self, *args, **kwargs):
        import threading

        if threading.current_thread().name.startswith("slicerfm-jobs") and self.release is not None:
            self.entered.set()
            if not self.release.wait(30):
                raise RuntimeError("the test never opened the gate")
        return super().decode_logits(*args, **kwargs)


class StandInSliceEngine(MedSamEngine):
    """The medsam engine with the gated stand-in network instead of MedSAM (no weights)."""

    name = "slices-standin"
    capabilities = EngineCapabilities(("box", "point"), ("CT", "MR"), False, ("cpu",), "stand-in slices")

    def weights_status(self):
        return True, "no weights needed"

    def load(self):
        self.network = GatedThresholdNet()


class SimilarityNet(ThresholdNet):
    """Stand-in for a slice network that follows a box's content on real images too: the
    object is the pixels whose grey level (after the engine's intensity mapping) lies within
    ``tolerance`` of the median of the box's inner half, in the connected parts that meet that
    inner half, kept inside the box; positive points add the similar parts under them (grey
    level of the first positive point when there is no box), negative points remove theirs.
    A box whose inside looks like its surroundings (the median of a ``ring``-pixel frame
    around it within ``tolerance``) holds no object: the mask is empty, so a propagation
    stops past the object's end as a real network's would."""

    tolerance = 25
    ring = 2

    def to_mask(self, logits, frame):
        from scipy import ndimage

        pixels, box, coords, labels = logits
        sr, sc = frame.scale
        grey = pixels.astype(np.int16)
        points = [(min(int(np.floor(y / sr + 0.5)), pixels.shape[0] - 1),
                   min(int(np.floor(x / sc + 0.5)), pixels.shape[1] - 1), int(label))
                  for (x, y), label in zip(coords if coords is not None else [], labels if labels is not None else [])]
        inside = np.zeros(pixels.shape, bool)
        if box is not None:
            r0, r1 = max(int(np.ceil(box[1] / sr - 1e-6)), 0), int(np.floor(box[3] / sr + 1e-6))
            c0, c1 = max(int(np.ceil(box[0] / sc - 1e-6)), 0), int(np.floor(box[2] / sc + 1e-6))
            inside[r0:r1 + 1, c0:c1 + 1] = True
            h, w = max((r1 - r0) // 4, 0), max((c1 - c0) // 4, 0)
            inner = np.zeros(pixels.shape, bool)
            inner[r0 + h:r1 - h + 1, c0 + w:c1 - w + 1] = True
            reference = float(np.median(grey[inner])) if inner.any() else None
            around = np.zeros(pixels.shape, bool)
            around[max(r0 - self.ring, 0):r1 + self.ring + 1, max(c0 - self.ring, 0):c1 + self.ring + 1] = True
            around &= ~inside
            if reference is not None and around.any() \
                    and abs(float(np.median(grey[around])) - reference) <= self.tolerance:
                reference = None
        else:
            inner = None
            positive = [(r, c) for r, c, label in points if label == 1]
            reference = float(grey[positive[0]]) if positive else None
        if reference is None:
            return np.zeros(pixels.shape, bool)
        components, _ = ndimage.label(np.abs(grey - reference) <= self.tolerance)
        keep = set(np.unique(components[inner]).tolist()) if inner is not None else set()
        drop = set()
        for r, c, label in points:
            (keep if label == 1 else drop).add(int(components[r, c]))
        keep -= drop | {0}
        mask = np.isin(components, sorted(keep)) if keep else np.zeros(pixels.shape, bool)
        return mask & inside if box is not None else mask


def wait_while_held(step) -> None:
    """While the file named by ``SLICERFM_TEST_SLICE_HOLD`` exists, wait -- entering the
    job's ``step()`` now and then, which raises once the job is cancelled or superseded, so a
    held propagation still stops on a cancel -- then sleep ``SLICERFM_TEST_SLICE_DELAY_S``
    seconds (default 0)."""
    import os
    import time

    hold = os.environ.get("SLICERFM_TEST_SLICE_HOLD")
    deadline = time.monotonic() + 120.0
    while hold and os.path.exists(hold):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test never removed {hold}")
        with step():
            pass
        time.sleep(0.02)
    time.sleep(float(os.environ.get("SLICERFM_TEST_SLICE_DELAY_S", "0")))


class HeldSliceEngine(MedSamEngine):
    """The medsam engine (its real prompts, embedding cache and propagation job) with the
    stand-in :class:`SimilarityNet`, whose propagations wait in every device step while the
    hold file exists (:func:`wait_while_held`): front-end tests see a propagation running
    for as long as they need, or watch its progress. The slice engine of the front-end tests,
    served by a backend process through ``SLICERFM_ENGINE_PLUGINS``
    (``slices-test=slicewise_helpers:HeldSliceEngine``)."""

    name = "slices-test"
    capabilities = EngineCapabilities(("box", "point"), ("CT", "MR"), False, ("cpu",),
                                      "test slice engine: medsam with a stand-in network")

    def weights_status(self):
        return True, "no weights needed"

    def load(self):
        self.network = SimilarityNet()

    def propagate(self, plan, progress=None, step=None):
        import contextlib

        job_step = step or contextlib.nullcontext

        @contextlib.contextmanager
        def held_step():
            wait_while_held(job_step)
            with job_step():
                yield

        return super().propagate(plan, progress=progress, step=held_step)
