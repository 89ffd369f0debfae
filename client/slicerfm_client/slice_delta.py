"""Slice delta: the lossless, reversible prediction behind the ``blosc2-slicedelta`` codec.

A volume's slice ``k`` looks much like slice ``k - 1``, so each item of the flat C-order
array (numpy ``(k, j, i)`` order) is replaced by its difference from the item one slice
before::

    stride      = prod(shape[1:])                    # items per slice, J * I for (K, J, I)
    residual[n] = x[n] - x[n - stride]               # x[n - stride] = 0 when n < stride
    sent[n]     = zigzag(residual[n])                # 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ...

The arithmetic runs on the item's bit pattern as an unsigned integer of the same width,
modulo ``2**bits``: it cannot overflow, and it inverts exactly for every dtype -- int8 to
int64, unsigned, float32/float64 (NaN payloads and signed zeros included). Zigzag maps the
small residuals of either sign to small unsigned numbers, so after blosc2's byte shuffle
their high bytes are long runs of zeros, which ZSTD squeezes to almost nothing.

Both directions work on one chunk (a flat range ``[start, stop)`` of items) at a time:
:func:`encode_range` reads the whole source array (the previous slice may lie in the
previous chunk); :func:`decode_range_in_place` needs the destination's items before
``start`` already decoded -- which is how chunks arrive. No chunk ever needs more memory
than itself.
"""

from __future__ import annotations

import numpy as np

# The integration of a decoded range adds one slice at a time (fast while slices are long)
# or accumulates down columns (faster for thousands of thin slices); measured crossover.
_LOOP_MIN_STRIDE = 1024
_LOOP_MAX_PERIODS = 16
# Element-wise steps run on blocks this size, which stay in the CPU cache between the steps
# (about twice as fast as whole 4 MiB chunks) and bound the temporaries.
_BLOCK_BYTES = 1 << 18


def slice_stride(shape) -> int:
    """Items per slice: ``prod(shape[1:])`` (1 for 0-D and 1-D arrays, at least 1)."""
    stride = 1
    for size in tuple(shape)[1:]:
        stride *= int(size)
    return max(1, stride)


def unsigned_view(flat: np.ndarray) -> np.ndarray:
    """The same memory as unsigned integers of the item's width (``uint8`` ... ``uint64``)."""
    return flat.view(np.dtype(f"<u{flat.dtype.itemsize}"))


def _signed(values: np.ndarray) -> np.ndarray:
    return values.view(np.dtype(f"<i{values.dtype.itemsize}"))


def encode_range(source: np.ndarray, start: int, stop: int, stride: int, out: np.ndarray) -> np.ndarray:
    """Zigzag slice residuals of ``source[start:stop]``, written to ``out[:stop - start]``.

    ``source`` is the whole flat array as an unsigned view (:func:`unsigned_view`), ``out`` a
    scratch array of the same dtype with at least ``stop - start`` items. Returns the filled
    part of ``out``.
    """
    count = stop - start
    out = out[:count]
    head = min(max(stride - start, 0), count)  # items of the first slice: no predecessor
    out[:head] = source[start : start + head]
    block = max(1, _BLOCK_BYTES // out.dtype.itemsize)
    for begin in range(start + head, stop, block):
        end = min(begin + block, stop)
        residual = out[begin - start : end - start]
        np.subtract(source[begin:end], source[begin - stride : end - stride], out=residual)
        _zigzag_in_place(residual)
    _zigzag_in_place(out[:head])
    return out


def _zigzag_in_place(values: np.ndarray) -> None:
    """0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ... on unsigned ``values`` read as signed."""
    signed = _signed(values)
    sign = signed >> (8 * values.dtype.itemsize - 1)  # 0 or -1 (all ones)
    np.left_shift(signed, 1, out=signed)
    np.bitwise_xor(signed, sign, out=signed)


def _unzigzag_in_place(values: np.ndarray) -> None:
    """The inverse of :func:`_zigzag_in_place`."""
    low_bit = values & 1
    np.subtract(0, low_bit, out=low_bit)  # modulo 2**bits: 1 -> all ones, 0 -> 0
    np.right_shift(values, 1, out=values)
    np.bitwise_xor(values, low_bit, out=values)


def decode_range_in_place(flat: np.ndarray, start: int, stop: int, stride: int) -> None:
    """Undo :func:`encode_range` on ``flat[start:stop]``, which holds the sent values.

    ``flat`` is the destination's flat unsigned view; ``flat[:start]`` must already hold the
    decoded items. Works on any alignment of ``start``/``stop`` to slices and any stride;
    Python loops only over 256 KiB blocks and over slices of at least 1024 items (thinner
    ones go through numpy's accumulate), never over items.
    """
    block = max(1, _BLOCK_BYTES // flat.dtype.itemsize)
    for begin in range(start, stop, block):
        end = min(begin + block, stop)
        _unzigzag_in_place(flat[begin:end])  # then, while the block is in the cache:
        first = max(begin, stride)  # items before `stride` have no predecessor: sent as they are
        if first < end:
            _add_previous_slices(flat, first, end, stride)


def _add_previous_slices(flat: np.ndarray, first: int, stop: int, stride: int) -> None:
    """``flat[n] += flat[n - stride]`` for n in ``[first, stop)``, in increasing n."""
    periods = -(-(stop - first) // stride)
    if stride >= _LOOP_MIN_STRIDE or periods <= _LOOP_MAX_PERIODS:
        # One vectorised add per slice-long piece: each reads only finished items.
        for piece in range(first, stop, stride):
            end = min(piece + stride, stop)
            np.add(flat[piece:end], flat[piece - stride : end - stride], out=flat[piece:end])
        return
    # Thin slices, many of them: numpy's accumulate down the columns of a (slices, stride)
    # view is faster than that many small adds. Row 0 is the slice before `first` (decoded).
    full = (stop - first) // stride
    rows = flat[first - stride : first + full * stride].reshape(full + 1, stride)
    np.add.accumulate(rows, axis=0, out=rows)
    tail = first + full * stride
    if tail < stop:
        np.add(flat[tail:stop], flat[tail - stride : stop - stride], out=flat[tail:stop])
