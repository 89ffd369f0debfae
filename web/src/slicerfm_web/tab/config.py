"""What the gateway tells a tab process when it starts it (one JSON line on its stdin).

Secrets (the backend's access token, the tab's own key) travel this way rather than on the
command line, where every local user could read them with ``ps``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Optional

#: header the gateway adds to every request it forwards to a tab; the tab refuses others
TAB_KEY_HEADER = "X-SlicerFM-Tab-Key"

MIB = 1024 * 1024


@dataclass
class TabConfig:
    """Settings of one tab process.

    backend_url / backend_token: the SlicerFM backend and its access token ("" = none).
    ca_bundle / allow_insecure_http: how to reach it (see ``ConnectionSettings``).
    tab_key: the secret the gateway sends in :data:`TAB_KEY_HEADER`; every other request
        is refused (403), so another local user cannot take over the tab's port.
    data_dir: a server folder the page may open images from ("" = none); nothing outside
        it is ever read.
    max_upload_bytes: largest accepted upload; max_voxels / max_dimension: largest image.
    grace_s: the process ends this many seconds after its last page (websocket) closed.
    unclaimed_s: ... or this many seconds after start when no page ever connected (a spare
        tab started ahead of need waits this long for its first page).
    base_path: the URL path the gateway serves the tab under (``/t/<tab id>/``).
    auto_engines: engines offered for automatic segmentation when the server serves them.
    """

    tab_id: str
    backend_url: str
    backend_token: str = field(default="", repr=False)
    ca_bundle: str = ""
    allow_insecure_http: bool = False
    tab_key: str = field(default="", repr=False)
    data_dir: str = ""
    max_upload_bytes: int = 2048 * MIB
    max_voxels: int = 600_000_000
    max_dimension: int = 4096
    grace_s: int = 30
    unclaimed_s: int = 3600
    base_path: str = "/"
    auto_engines: str = "vista3d"
    title: str = "SlicerFM"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TabConfig":
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("the tab configuration must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown tab settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def auto_engine_names(self) -> list:
        return [name.strip() for name in self.auto_engines.split(",") if name.strip()]


def describe_size(nbytes: Optional[float]) -> str:
    """``"512 MB"``-style text for messages."""
    if nbytes is None:
        return "?"
    if nbytes >= 1024 * MIB:
        return f"{nbytes / (1024 * MIB):.1f} GB"
    if nbytes >= MIB:
        return f"{nbytes / MIB:.0f} MB"
    return f"{nbytes / 1024:.0f} KB"
