"""Strict checkpoint checks shared by the engines that load torch state dicts."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Dict, List

from ..errors import CheckpointError


def state_dict_problems(expected: Dict[str, Any], state: Dict[str, Any]) -> List[str]:
    """What keeps ``state`` from loading strictly into a module whose ``state_dict()`` is
    ``expected``: missing keys, unexpected keys, shape mismatches (a few examples of each);
    empty when it fits exactly."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: file {tuple(state[k].shape)}, network {tuple(v.shape)}"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es), e.g. {'; '.join(wrong[:3])}")
    return problems


def load_checkpoint(path: Path, fix: str) -> Any:
    """``torch.load`` of ``path`` on the CPU with ``weights_only`` (tensors and plain
    containers only); CheckpointError with ``fix`` appended when the file is absent,
    truncated or corrupt, or holds pickled objects."""
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist; {fix}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as problem:
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupt file?): "
                              f"{problem}; {fix}") from None
    except Exception as problem:  # pickle errors from weights_only: not a plain checkpoint
        raise CheckpointError(f"checkpoint {path} holds more than tensors and plain containers "
                              f"({type(problem).__name__}: {problem}); {fix}") from None
