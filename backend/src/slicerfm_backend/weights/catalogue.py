"""The weights catalogue: one entry per released weights file, with the published facts
gathered in docs/MODELS.md (and, for MedSAM and SAM, from their public sources named below).

Revisions: no commit hash is published for any of these files, so every hub entry uses
the branch ``main`` (not a pinned commit; :mod:`.store` records the commit the hub reports
at download time next to the file). Published sizes are rounded ("402 MB"), so no entry
pins ``size_bytes``; no entry pins a sha256 either, because none is published. Only
VISTA3D has a published digest (an md5), which is pinned. For an entry without a pinned
size or sha256 ``verify`` reports "size/checksum not pinned" instead of inventing numbers.

SAM-Med3D: only the turbo checkpoint is listed (docs/MODELS.md §1), so there are no variant
entries.

MedSAM (``medsam``): MedSAM's README (bowang-lab/MedSAM) publishes ``medsam_vit_b.pth`` only
in a Google Drive folder, which cannot be fetched by a plain URL: the entry says where, and
``weights import medsam FILE`` installs a copy downloaded by hand. Its size and digests are
not published there, so none is pinned. The repository's licence is Apache-2.0.

SAM (``sam-vit-b``, ``sam-vit-l``, ``sam-vit-h``, the ``sam`` engine's ``model`` option):
the three checkpoints Meta's segment-anything README links on dl.fbaipublicfiles.com, under
Apache-2.0. Meta's README gives no digests; the sizes and sha256/md5 digests pinned here
are the ones several independent public download scripts list in agreement, and each md5
starts with the hex suffix Meta put in the file's name.

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
MEDSAM_DRIVE = "https://drive.google.com/drive/folders/1ETWmi4AiniJeWOt6HAsYgTjYv_fkgzoN"
SAM_DOWNLOADS = "https://dl.fbaipublicfiles.com/segment_anything"
SAM_LICENCE = ("Apache-2.0 (segment-anything README: the model is licensed under Apache 2.0)",
               "https://github.com/facebookresearch/segment-anything/blob/main/LICENSE")
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
    revision_kind: str            # "commit", "tag", "branch", or "release" (a file published
                                  # outside a versioned repository)
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
    "medsam": WeightsEntry(
        engine="medsam", filename="medsam_vit_b.pth", revision="medsam1", revision_kind="release",
        licence="Apache-2.0 (MedSAM repository LICENSE)",
        licence_url="https://github.com/bowang-lab/MedSAM/blob/main/LICENSE", approx_size="375 MB",
        source=f"Google Drive folder linked from the MedSAM README ({MEDSAM_DRIVE})",
        note="MedSAM ViT-B: a plain state dict of segment-anything's Sam vit_b, loaded strictly",
    ),
    **{
        f"sam-vit-{size}": WeightsEntry(
            engine=f"sam-vit-{size}", filename=f"sam_vit_{size}_{suffix}.pth", revision="sam1",
            revision_kind="release", licence=SAM_LICENCE[0], licence_url=SAM_LICENCE[1],
            download_url=f"{SAM_DOWNLOADS}/sam_vit_{size}_{suffix}.pth",
            source=f"Meta segment-anything release, {SAM_DOWNLOADS}/sam_vit_{size}_{suffix}.pth",
            size_bytes=size_bytes, sha256=sha256, md5=md5, approx_size=approx,
            note=f"SAM ViT-{size.upper()} (engine 'sam', option model=vit_{size}): a plain state dict "
                 f"of segment-anything's Sam vit_{size}, loaded strictly",
        )
        for size, suffix, size_bytes, sha256, md5, approx in (
            ("b", "01ec64", 375042383, "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
             "01ec64d29a2fca3f0661936605ae66f8", "375 MB"),
            ("l", "0b3195", 1249524607, "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
             "0b3195507c641ddb6910d2bb5adee89c", "1.25 GB"),
            ("h", "4b8939", 2564550879, "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
             "4b8939a88964f0f4ff5f5b2642c598a6", "2.56 GB"),
        )
    },
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
