"""The weights store: files under a cache directory we control, laid out as
``<weights dir>/<engine>/<revision>/<filename>``, each with a ``<filename>.json`` record
(size in bytes, sha256, md5, source, hub commit) written when the file was installed.

Files are only ever installed whole: downloads and imports go to a temporary name in the
same directory, are checked against the catalogue, and are renamed into place; on a
mismatch the temporary file is deleted. Downloads use ``huggingface_hub.hf_hub_download``
against one endpoint (``HF_ENDPOINT`` or huggingface.co) and never fall back to another host;
an entry with a ``download_url`` instead (a GitHub release asset) is fetched from that one URL
over plain HTTP(S), with the same checks (announced length, pinned size and digests).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..progress import bar
from .catalogue import WeightsEntry
from .checks import FileFacts, WeightsError, check_file, file_facts, mismatches, pinned_summary

DEFAULT_WEIGHTS_DIR = "~/.cache/slicerfm/weights"
DEFAULT_ENDPOINT = "https://huggingface.co"


def default_root() -> Path:
    """``SLICERFM_WEIGHTS_DIR``, else ``~/.cache/slicerfm/weights``."""
    return Path(os.environ.get("SLICERFM_WEIGHTS_DIR") or DEFAULT_WEIGHTS_DIR).expanduser()


def hub_endpoint() -> str:
    """The hub to download from: ``HF_ENDPOINT`` (e.g. a hospital's mirror), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def path(entry: WeightsEntry, root: Path) -> Path:
    """Where ``entry``'s file lives in the store (whether or not it is there)."""
    return Path(root) / entry.engine / entry.revision / entry.filename


def record_path(entry: WeightsEntry, root: Path) -> Path:
    file = path(entry, root)
    return file.with_name(file.name + ".json")


def read_record(entry: WeightsEntry, root: Path) -> dict:
    """The install record of ``entry``'s file, or ``{}`` when there is none."""
    try:
        return json.loads(record_path(entry, root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class Verification:
    """``state``: "missing", "verified" (a pinned digest matches), "unpinned" (present; the
    catalogue pins no digest) or "mismatch". ``detail`` is one line for people."""

    state: str
    detail: str
    path: Path

    @property
    def ok(self) -> bool:
        return self.state in ("verified", "unpinned")


def verify(entry: WeightsEntry, root: Path) -> Verification:
    """Hash the stored file and compare it with the catalogue (and the install record when
    the catalogue pins nothing, to catch a file changed since it was installed)."""
    file = path(entry, root)
    if not file.is_file():
        return Verification("missing", f"not in {file.parent}; {fix_command(entry)}", file)
    facts = file_facts(file)
    problems = mismatches(entry, facts)
    recorded = read_record(entry, root).get("sha256")
    if recorded and recorded != facts.sha256:
        problems.append(f"sha256 {facts.sha256} differs from {recorded} recorded at install")
    if problems:
        return Verification("mismatch", "; ".join(problems) + f"; delete it and {fix_command(entry)}", file)
    if entry.sha256 is None and entry.md5 is None:
        return Verification("unpinned", f"present, size/checksum not pinned (sha256 {facts.sha256})", file)
    return Verification("verified", f"{pinned_summary(entry)} match", file)


def fix_command(entry: WeightsEntry) -> str:
    """The command that puts ``entry``'s file in place."""
    if entry.hub_repo is None and entry.download_url is None:
        return (f"download {entry.filename} by hand ({entry.source}) and run "
                f"`slicerfm-backend weights import {entry.engine} FILE`")
    return f"run `slicerfm-backend weights fetch {entry.engine}`"


def _install(entry: WeightsEntry, root: Path, temp: Path, facts: FileFacts, source: dict) -> Path:
    """Rename the checked ``temp`` into place and write its record."""
    final = path(entry, root)
    os.replace(temp, final)
    record = {"engine": entry.engine, "filename": entry.filename, "revision": entry.revision,
              "size_bytes": facts.size, "sha256": facts.sha256, "md5": facts.md5,
              "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **source}
    record_file = record_path(entry, root)
    temp_record = record_file.with_name(record_file.name + ".tmp")
    temp_record.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temp_record, record_file)
    return final


def _hub_progress(download) -> dict:
    """``tqdm_class`` for huggingface_hub's download (bytes on a terminal, nothing elsewhere)
    when this huggingface_hub takes one; its own bars otherwise."""
    import inspect

    from ..progress import terminal_tqdm

    return {"tqdm_class": terminal_tqdm()} if "tqdm_class" in inspect.signature(download).parameters else {}


def fetch(entry: WeightsEntry, root: Path, endpoint: Optional[str] = None) -> Path:
    """Download ``entry`` from the hub at its revision, check it, install it; the path.

    Raises WeightsError when the download fails and WeightsChecksumError when the file does
    not match the catalogue; in both cases nothing is left in the store.
    """
    if entry.hub_repo is None and entry.download_url is not None:
        return fetch_url(entry, root)
    if entry.hub_repo is None:
        raise WeightsError(f"{entry.engine} weights are not on the Hugging Face hub: {fix_command(entry)}")
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    endpoint = (endpoint or hub_endpoint()).rstrip("/")
    final = path(entry, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=final.parent))
    url = hf_hub_url(entry.hub_repo, entry.filename, revision=entry.revision, endpoint=endpoint)
    try:
        try:
            commit = get_hf_file_metadata(url, endpoint=endpoint).commit_hash
            downloaded = Path(hf_hub_download(entry.hub_repo, entry.filename, revision=entry.revision,
                                              local_dir=staging, endpoint=endpoint, force_download=True,
                                              **_hub_progress(hf_hub_download)))
        except Exception as error:  # network, HTTP and consistency errors of huggingface_hub
            raise WeightsError(f"downloading {url} failed: {type(error).__name__}: {error}") from error
        facts = check_file(entry, downloaded, f"the file downloaded from {url}")
        return _install(entry, root, downloaded, facts,
                        {"source": url, "hub_repo": entry.hub_repo, "hub_commit": commit})
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_url(entry: WeightsEntry, root: Path, timeout_s: float = 60.0) -> Path:
    """Download ``entry.download_url`` (redirects followed, no other host tried), check it
    (the announced Content-Length, then the catalogue's pins), install it; the path.
    WeightsError / WeightsChecksumError on failure, with nothing left in the store."""
    import urllib.request

    url = entry.download_url
    if not url or not url.startswith(("https://", "http://")):
        raise WeightsError(f"{entry.engine}: download URL {url!r} is not an http(s) URL")
    final = path(entry, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".fetch-", dir=final.parent)
    temp = Path(temp_name)
    try:
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
                announced = response.headers.get("Content-Length")
                received = 0
                with bar(total=int(announced) if announced else None, desc=entry.filename,
                         unit="B", unit_scale=True) as shown:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        received += len(chunk)
                        shown.update(len(chunk))
        except Exception as error:  # URLError, HTTPError, IncompleteRead, timeouts, disk errors
            raise WeightsError(f"downloading {url} failed: {type(error).__name__}: {error}") from error
        if announced is not None and received != int(announced):
            raise WeightsError(f"downloading {url} failed: received {received} bytes of the "
                               f"{announced} announced; nothing was kept")
        facts = check_file(entry, temp, f"the file downloaded from {url}")
        return _install(entry, root, temp, facts, {"source": url})
    finally:
        temp.unlink(missing_ok=True)


def import_file(entry: WeightsEntry, root: Path, source: Path) -> Path:
    """Copy a file brought over by hand into the store after checking it; the path."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise WeightsError(f"{source} is not a file")
    final = path(entry, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".import-", dir=final.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        shutil.copyfile(source, temp)
        facts = check_file(entry, temp, f"{source}")
        return _install(entry, root, temp, facts, {"source": f"imported from {source.resolve()}"})
    finally:
        temp.unlink(missing_ok=True)
