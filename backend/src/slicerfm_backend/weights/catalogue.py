"""The weights catalogue: one entry per released weights file, with the published facts
gathered in docs/MODELS.md only.

Revisions: no commit hash is published for any of these files, so every hub entry uses
the branch ``main`` (not a pinned commit; :mod:`.store` records the commit the hub reports
at download time next to the file). Published sizes are rounded ("402 MB"), so no entry
pins ``size_bytes``; no entry pins a sha256 either, because none is published. Only
VISTA3D has a published digest (an md5), which is pinned. For an entry without a pinned
size or sha256 ``verify`` reports "size/checksum not pinned" instead of inventing numbers.

SAM-Med3D: only the turbo checkpoint is listed (docs/MODELS.md §1), so there are no variant
entries.
uniGradICON/multiGradICON weights are GitHub release assets, not hub files (``download_url``,
fetched over plain HTTPS by :mod:`.store`). docs/MODELS.md §3 names the release tags and file; the
repository (uncbiag/uniGradICON) and the URLs are the ones pip ``unigradicon`` 1.0.6 itself
downloads from (``get_unigradicon`` / ``get_multigradicon``). No separate weights licence is
published; the repository's LICENSE file, shipped in the pip package, is Apache-2.0 (the
package's PyPI classifier says MIT), so the entries say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

APACHE_2 = ("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
UNIGRADICON_RELEASES = "https://github.com/uncbiag/uniGradICON/releases/download"
UNIGRADICON_LICENCE = ("Apache-2.0 (uniGradICON repository LICENSE; no separate weights licence)",
                       "https://github.com/uncbiag/uniGradICON/blob/main/LICENSE")


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file an engine needs.

    ``hub_repo`` is a Hugging Face model repository id (None when the file is not on the hub;
    ``source`` then says where it is published, and ``download_url``, when set, is the one
    plain HTTPS URL it is fetched from). ``filename`` is the path inside the repo and
    below ``<weights dir>/<engine>/<revision>/``. ``size_bytes`` (bytes), ``sha256`` and
    ``md5`` (lower-case hex) are None when not pinned; ``approx_size`` is the rounded size
    as published, for display only.
    """

    engine: str
    filename: str
    revision: str
    revision_kind: str            # "commit", "tag" or "branch"
    licence: str
    licence_url: str
    note: str
    hub_repo: Optional[str] = None
    source: str = ""
    download_url: Optional[str] = None  # plain HTTPS file (e.g. a GitHub release asset)
    size_bytes: Optional[int] = None
    sha256: Optional[str] = None
    md5: Optional[str] = None
    approx_size: str = "unknown"

    @property
    def pinned(self) -> bool:
        """Whether the file's content is pinned (a size and a digest to check against)."""
        return self.size_bytes is not None and (self.sha256 is not None or self.md5 is not None)

    @property
    def url(self) -> str:
        """Where the file is published (hub resolve URL on huggingface.co, else ``source``)."""
        if self.hub_repo is None:
            return self.download_url or self.source
        return f"https://huggingface.co/{self.hub_repo}/resolve/{self.revision}/{self.filename}"


CATALOGUE: Dict[str, WeightsEntry] = {
    "sam-med3d": WeightsEntry(
        engine="sam-med3d", hub_repo="blueyo0/SAM-Med3D", filename="sam_med3d_turbo.pth",
        revision="main", revision_kind="branch", licence=APACHE_2[0], licence_url=APACHE_2[1],
        approx_size="402 MB",
        note="SAM-Med3D-turbo; dict {'model_state_dict': ...} loaded strictly into medim's SAM_Med3D",
    ),
    "vista3d": WeightsEntry(
        engine="vista3d", hub_repo="MONAI/vista3d", filename="models/model.pt",
        revision="main", revision_kind="branch",
        licence="NVIDIA licence, research and evaluation only",
        licence_url="https://huggingface.co/MONAI/vista3d",
        md5="6ce45a8edde4400c5d28d5e74d7b61d5", approx_size="872 MB",
        note="plain state_dict of monai vista3d132; md5 as published for the MONAI bundle's model.pt",
    ),
    "unigradicon": WeightsEntry(
        engine="unigradicon", filename="Step_2_final.trch", revision="unigradicon_weights",
        revision_kind="tag", licence=UNIGRADICON_LICENCE[0], licence_url=UNIGRADICON_LICENCE[1],
        approx_size="unknown", download_url=f"{UNIGRADICON_RELEASES}/unigradicon_weights/Step_2_final.trch",
        source="GitHub release uncbiag/uniGradICON, tag unigradicon_weights, asset Step_2_final.trch",
        note="torch state dict for regis_net of unigradicon.make_network([1,1,175,175,175], "
             "include_last_step=True)",
    ),
    "multigradicon": WeightsEntry(
        engine="multigradicon", filename="Step_2_final.trch", revision="multigradicon_weights",
        revision_kind="tag", licence=UNIGRADICON_LICENCE[0], licence_url=UNIGRADICON_LICENCE[1],
        approx_size="unknown", download_url=f"{UNIGRADICON_RELEASES}/multigradicon_weights/Step_2_final.trch",
        source="GitHub release uncbiag/uniGradICON, tag multigradicon_weights, asset Step_2_final.trch",
        note="torch state dict for regis_net of the multiGradICON network (same architecture)",
    ),
}


def entry_for(engine: str) -> WeightsEntry:
    """The catalogue entry of ``engine``; ValueError listing the known names otherwise."""
    try:
        return CATALOGUE[engine]
    except KeyError:
        raise ValueError(f"no weights are catalogued for {engine!r}; "
                         f"known: {', '.join(sorted(CATALOGUE))}") from None
