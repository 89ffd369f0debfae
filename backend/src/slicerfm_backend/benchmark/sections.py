"""The sections of the benchmark: what each measures, for which engines, quick and full.

A section is measured when one of its engines is selected (``--engines``) or it needs none,
and ``--sections`` (when given) names it. ``quick`` sizes every section down so that the
whole quick run takes a few minutes on 2 cores; the full run measures what docs/BENCHMARKS.md
shows (about 1.5 h on 2 cores, most of it MedSAM, SAM-Med3D and VISTA3D on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

SEGMENTATION_ENGINES = ("classic", "sam-med3d", "vista3d")  # 3-D clicks: the simulated user's engines
ENGINES = ("classic", "sam-med3d", "medsam", "vista3d", "unigradicon")
QUICK_ENGINES = ("classic", "sam-med3d")


@dataclass(frozen=True)
class Section:
    """``measure(quick, engines, log)`` returns the section's figures (JSON-ready)."""

    name: str
    title: str
    engines: Tuple[str, ...]  # empty: always measured
    measure: Callable[[bool, Sequence[str], Callable], dict]


def _codecs(quick, engines, log):
    from . import codecs

    keys = ("sample_ct", "dicom_ct", "mr", "labels61", "mask") if quick else None
    return codecs.measure(keys, repeats=1 if quick else 9, log=log)


def _uploads(quick, engines, log):
    from . import uploads

    memory = [(40, 256, 256), (100, 512, 512)] + ([] if quick else [(600, 512, 512)])
    organs = ("liver", "spleen") if quick else ("liver", "spleen", "kidney_left", "kidney_right", "lung_left")
    return uploads.measure(rounds=1 if quick else 3, memory_sizes=memory, classic_organs=organs, log=log)


def _protocol(quick, engines, log):
    from . import protocol

    return protocol.measure(10 if quick else 30, 3 if quick else 10, log=log)


def _pump(quick, engines, log):
    from . import pump

    return pump.measure(repeats=1 if quick else 3, waits=(0.015,) if quick else None, log=log)


def _dice(quick, engines, log):
    from . import dice

    chosen = [e for e in engines if e in SEGMENTATION_ENGINES]
    return dice.measure(chosen, clicks=5 if quick else 10, case_names=dice.QUICK_CASES if quick else None, log=log)


def _classic_fine(quick, engines, log):
    from . import classic_fine

    if quick:  # a quarter of the voxels: the same anatomy and code paths, seconds instead of minutes
        return classic_fine.measure(clicks=3, size_ijk=(256, 256, 150), log=log)
    return classic_fine.measure(clicks=5, log=log, structures={**classic_fine.ORGANS, **classic_fine.SMALL})


def _classic_suite(quick, engines, log):
    from . import classic_suite

    if quick:  # one structure of each kind but FLAIR
        return classic_suite.measure(clicks=10, only=classic_suite.QUICK_KEYS, log=log)
    return classic_suite.measure(clicks=10, log=log)


def _registration(quick, engines, log):
    from . import registration

    return registration.measure(classic=True, shrink=2 if quick else 1, log=log)


def _unigradicon(quick, engines, log):
    from . import registration

    return {"unigradicon": registration.gradicon_run(96 if quick else 175, (0,), 1 if quick else 2, log=log)}


def _sam_med3d(quick, engines, log):
    from . import sam_med3d

    if quick:
        return sam_med3d.measure(("empty",), refinements=4, organs=(1,), log=log)
    return sam_med3d.measure(log=log)


def _medsam(quick, engines, log):
    from . import medsam

    return medsam.measure(slices=4 if quick else 40, repeat=1 if quick else 3, log=log)


def _vista3d(quick, engines, log):
    from . import vista3d

    if quick:
        return vista3d.measure(network=False, memory_sizes=("256x256x192",), log=log)
    return vista3d.measure(log=log)


SECTIONS: List[Section] = [
    Section("codecs", "wire codecs in-process", (), _codecs),
    Section("uploads", "uploads, server memory and responses through a real server", (), _uploads),
    Section("protocol", "protocol overhead per click", ("classic",), _protocol),
    Section("pump", "the Slicer module's worker pump under a GIL-holding main thread", (), _pump),
    Section("dice", "Dice per simulated click", SEGMENTATION_ENGINES, _dice),
    Section("classic_fine", "classic engine on the sample CT resampled to 512x512x300 (quick: 256x256x150)",
            ("classic",), _classic_fine),
    Section("classic_suite", "classic engine on the structures of issue 18 (CT, MR, brain; quick: 4 of them)",
            ("classic",), _classic_suite),
    Section("registration", "classic registration on brain_pair", ("classic",), _registration),
    Section("sam_med3d", "SAM-Med3D latency (random weights)", ("sam-med3d",), _sam_med3d),
    Section("medsam", "MedSAM per slice and propagation (random weights)", ("medsam",), _medsam),
    Section("unigradicon", "uniGradICON pipeline (random weights)", ("unigradicon",), _unigradicon),
    Section("vista3d", "VISTA3D time and memory (random weights)", ("vista3d",), _vista3d),
]
BY_NAME: Dict[str, Section] = {s.name: s for s in SECTIONS}


def selected(engines: Sequence[str], names: Optional[Sequence[str]] = None) -> List[Section]:
    """The sections to measure for ``engines`` (and among ``names`` when given); ValueError
    for an unknown engine or section."""
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine(s) {', '.join(unknown)}; choose among {', '.join(ENGINES)}")
    if names is not None:
        wrong = [n for n in names if n not in BY_NAME]
        if wrong:
            raise ValueError(f"unknown section(s) {', '.join(wrong)}; choose among {', '.join(BY_NAME)}")
    return [s for s in SECTIONS if (not s.engines or set(s.engines) & set(engines))
            and (names is None or s.name in names)]
