"""A synthetic CT-like phantom (deterministic), and click plans on its organs.

Shape (K, J, I) = (300, 512, 512) by default, int16 HU, voxel size 0.8 x 0.8 mm in plane and
1.5 mm between slices; ``ijk_to_ras`` = diag(-0.8, -0.8, 1.5) with the volume centred on the
RAS origin (an LPS-stored axial CT as Slicer shows it). In mm about the volume centre
(x = lateral along i, y = antero-posterior along j, z along k):

* air -1000 HU outside the body;
* body: elliptic cylinder x^2/170^2 + y^2/125^2 <= 1 of soft tissue 40 HU, with a
  subcutaneous fat rim -100 HU (outer 10 % of the ellipse);
* organ-like ellipsoids (centre; semi-axes; HU): liver (-70,-10,40; 80,70,90; 60),
  spleen (95,30,60; 35,45,55; 50), kidneys (+-70,55,-30/-45; 28,30,50; 150),
  lungs (+-80,0,190; 70,90,80; -850);
* aorta: cylinder of radius 12 mm at (10, 40), 200 HU;
* spine: cylinder of radius 20 mm at (0, 85), 700 HU bone in 24 mm vertebrae separated
  by 6 mm discs of 80 HU;
* Gaussian noise sigma 10 HU on every voxel (``numpy.random.default_rng(seed)``, drawn
  slice by slice in k order), then rounded to int16.

Other shapes keep the spacing and the anatomy in mm (a shorter volume cuts it off).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

SHAPE = (300, 512, 512)
SPACING_KJI = (1.5, 0.8, 0.8)
NOISE_SIGMA_HU = 10.0

# name: (centre x, y, z mm; semi-axes a, b, c mm; HU)
ORGANS: Dict[str, Tuple[Tuple[float, float, float], Tuple[float, float, float], float]] = {
    "liver": ((-70.0, -10.0, 40.0), (80.0, 70.0, 90.0), 60.0),
    "spleen": ((95.0, 30.0, 60.0), (35.0, 45.0, 55.0), 50.0),
    "kidney_left": ((70.0, 55.0, -30.0), (28.0, 30.0, 50.0), 150.0),
    "kidney_right": ((-70.0, 55.0, -45.0), (28.0, 30.0, 50.0), 150.0),
    "lung_left": ((80.0, 0.0, 190.0), (70.0, 90.0, 80.0), -850.0),
    "lung_right": ((-80.0, 0.0, 190.0), (70.0, 90.0, 80.0), -850.0),
}
CLICK_ORGANS = ("liver", "spleen", "kidney_left", "kidney_right", "lung_left")


def synthetic_ijk_to_ras(shape: Sequence[int] = SHAPE,
                         spacing_kji: Sequence[float] = SPACING_KJI) -> np.ndarray:
    """diag(-si, -sj, sk) with voxel (0,0,0) placed so that the volume centre is RAS 0."""
    sk, sj, si = spacing_kji
    matrix = np.diag([-si, -sj, sk, 1.0])
    centre_ijk = (np.array(shape[::-1], dtype=float) - 1) / 2
    matrix[:3, 3] = -matrix[:3, :3] @ centre_ijk
    return matrix


def _mm_axes(shape, spacing_kji):
    """x (along i), y (along j) as 2-D (J, I) grids and z per slice, in mm about the centre."""
    nk, nj, ni = shape
    sk, sj, si = spacing_kji
    x = ((np.arange(ni, dtype=np.float32) - (ni - 1) / 2) * si)[None, :]
    y = ((np.arange(nj, dtype=np.float32) - (nj - 1) / 2) * sj)[:, None]
    z = (np.arange(nk, dtype=np.float32) - (nk - 1) / 2) * sk
    return x, y, z


def make_synthetic_ct(shape: Sequence[int] = SHAPE, seed: int = 0,
                      spacing_kji: Sequence[float] = SPACING_KJI) -> Tuple[np.ndarray, np.ndarray]:
    """The phantom of the module docstring: ``(array int16 (K, J, I), ijk_to_ras)``."""
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    x, y, z = _mm_axes(shape, spacing_kji)
    body = (x / 170.0) ** 2 + (y / 125.0) ** 2
    aorta = (x - 10.0) ** 2 + (y - 40.0) ** 2 <= 12.0**2
    spine = (x - 0.0) ** 2 + (y - 85.0) ** 2 <= 20.0**2
    out = np.empty(shape, dtype=np.int16)
    for k in range(nk):
        zk = float(z[k])
        hu = np.full((nj, ni), -1000.0, dtype=np.float32)
        hu[body <= 1.0] = -100.0
        hu[body <= 0.81] = 40.0  # 0.9^2: inner 90 % of the ellipse is soft tissue
        for (cx, cy, cz), (a, b, c), value in ORGANS.values():
            dz = ((zk - cz) / c) ** 2
            if dz >= 1.0:
                continue
            inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0 - dz
            hu[inside] = value
        hu[aorta] = 200.0
        hu[spine] = 700.0 if (zk + 1000.0) % 30.0 < 24.0 else 80.0
        hu += NOISE_SIGMA_HU * rng.standard_normal((nj, ni), dtype=np.float32)
        np.rint(hu, out=hu)
        out[k] = hu
    return out, synthetic_ijk_to_ras(shape, spacing_kji)


def organ_point_kji(organ: str, offset: Sequence[float] = (0.0, 0.0, 0.0),
                    shape: Sequence[int] = SHAPE, spacing_kji: Sequence[float] = SPACING_KJI):
    """Voxel (k, j, i) of an organ's centre moved by ``offset`` x its semi-axes (x, y, z)."""
    (cx, cy, cz), (a, b, c), _ = ORGANS[organ]
    mm = (cx + offset[0] * a, cy + offset[1] * b, cz + offset[2] * c)
    sk, sj, si = spacing_kji
    nk, nj, ni = shape
    return (round(mm[2] / sk + (nk - 1) / 2), round(mm[1] / sj + (nj - 1) / 2),
            round(mm[0] / si + (ni - 1) / 2))


# (offset in semi-axes, positive): centre, four positive refinements, one negative click
# just outside the organ (+1.15 semi-axes along x), as a user would correct a leak.
_CLICK_PATTERN = (
    ((0.0, 0.0, 0.0), True), ((0.4, 0.0, 0.0), True), ((0.0, 0.4, 0.0), True),
    ((0.0, 0.0, 0.4), True), ((-0.4, -0.2, -0.3), True), ((1.15, 0.0, 0.0), False),
)


def same_field_of_view(shape: Sequence[int]) -> Tuple[float, float, float]:
    """Spacing (k, j, i) mm that gives ``shape`` the default phantom's field of view."""
    return tuple(s * n / m for s, n, m in zip(SPACING_KJI, SHAPE, shape))


def click_plan(n: int, shape: Sequence[int] = SHAPE,
               spacing_kji: Sequence[float] = SPACING_KJI) -> List[Tuple[str, Tuple[int, int, int], bool]]:
    """``n`` clicks (segment, point_kji, positive) on the phantom of ``shape`` and spacing:
    organ by organ, up to six clicks each (centre, four positive refinements, one negative
    outside)."""
    plan = []
    per_organ = max(1, -(-n // len(CLICK_ORGANS)))
    for organ in CLICK_ORGANS:
        for offset, positive in _CLICK_PATTERN[:per_organ]:
            plan.append((organ, organ_point_kji(organ, offset, shape, spacing_kji), positive))
    while len(plan) < n:  # more than six per organ: cycle the pattern again
        plan += plan[: n - len(plan)]
    return plan[:n]


def noise_entropy_floor(sigma: float = NOISE_SIGMA_HU, bits: int = 16) -> float:
    """Entropy of round(N(0, sigma^2)) in bits as a fraction of ``bits``: no lossless coder
    that does not know the noise-free phantom compresses it below this fraction of raw."""
    import math

    cdf = [0.5 * (1 + math.erf((k + 0.5) / (sigma * math.sqrt(2)))) for k in range(-100, 100)]
    probabilities = np.diff([0.0] + cdf + [1.0])
    probabilities = probabilities[probabilities > 0]
    return float(-(probabilities * np.log2(probabilities)).sum() / bits)
