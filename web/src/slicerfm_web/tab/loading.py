"""Opening images from the page: browser uploads (HTTP) and the server's data folder.

``POST upload?name=<file name>`` carries the file as the raw request body. It is refused
before anything is read when its type is not one we open (415) or its declared size is
over the limit (413), streamed to the tab's temporary folder while counting (413 past the
limit, 400 when fewer bytes arrive than declared: a truncated upload), then read in a
worker thread (:mod:`slicerfm_web.tab.images`). A zip with several DICOM series makes the
page ask which one to open (``state.dicom_choices``). Every refusal is also posted to the
page's messages; nothing already open is touched by a failed load.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, List, Optional

from aiohttp import web

from .config import TabConfig, describe_size
from .images import (DicomSeries, ImageError, Limits, LoadedImage, WHAT_WE_OPEN, ZIP_SUFFIX,
                     find_dicom_series, read_dicom_series, read_volume_file, supported_suffix,
                     unpack_zip)
from .volumes import list_data_folder, resolve_entry

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class Loader:
    """Uploads, data-folder picks and DICOM series choice for one tab."""

    def __init__(self, state, config: TabConfig, open_image: Callable[[LoadedImage], None],
                 message: Callable[[str, str], None]):
        self.state = state
        self.config = config
        self.open_image = open_image
        self.message = message
        self.limits = Limits(config.max_voxels, config.max_dimension,
                             max_unpacked_bytes=max(4 * config.max_upload_bytes, 256 << 20))
        self.folder = Path(tempfile.mkdtemp(prefix=f"slicerfm-tab-{config.tab_id}-"))
        self._series: List[DicomSeries] = []
        self.data_dir = Path(config.data_dir).resolve() if config.data_dir else None
        state.update({"loading": False, "loading_text": "", "dicom_choices": [],
                      "upload_limit_text": describe_size(config.max_upload_bytes),
                      "data_entries": self.data_entries(), "data_dir_name":
                          self.data_dir.name if self.data_dir else ""})

    def data_entries(self) -> list:
        if self.data_dir is None or not self.data_dir.is_dir():
            return []
        return [entry.as_state() for entry in list_data_folder(self.data_dir)]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- HTTP upload ---------------------------------------------------------------------------

    async def handle_upload(self, request: web.Request) -> web.Response:
        name = Path(request.query.get("name", "")).name[:200]
        try:
            suffix = self._check_upload(name, request.content_length)
        except ImageError as error:
            status = 413 if "larger" in str(error) else 415
            return self._refuse(status, str(error))
        if self.state.loading:
            return self._refuse(409, "another image is still being opened: wait for it")
        self._begin(f"receiving '{name}'")
        target = self._fresh_folder() / f"upload{suffix}"
        try:
            received = await self._receive(request, target)
        except ImageError as error:
            self._end()
            return self._refuse(413 if "limit" in str(error) else 400, str(error))
        declared = request.content_length
        if declared is not None and received != declared:
            self._end()
            return self._refuse(400, f"the upload of '{name}' was cut off ({describe_size(received)} of "
                                     f"{describe_size(declared)} arrived): send it again")
        outcome = await self.open_file(target, name)
        return web.json_response(outcome, status=200 if outcome.get("ok") else 422)

    def _check_upload(self, name: str, declared: Optional[int]) -> str:
        suffix = supported_suffix(name)
        if not name or suffix is None:
            raise ImageError(f"'{name or 'the file'}' is not a file SlicerFM opens: choose "
                             f"{WHAT_WE_OPEN}")
        if declared is not None and declared > self.config.max_upload_bytes:
            raise ImageError(f"'{name}' ({describe_size(declared)}) is larger than the "
                             f"{describe_size(self.config.max_upload_bytes)} this server accepts")
        return suffix

    async def _receive(self, request: web.Request, target: Path) -> int:
        received = 0
        with open(target, "wb") as sink:
            async for chunk in request.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > self.config.max_upload_bytes:
                    raise ImageError(f"the upload is over the {describe_size(self.config.max_upload_bytes)} "
                                     "limit of this server")
                sink.write(chunk)
        return received

    def _refuse(self, status: int, text: str) -> web.Response:
        self.message(text, "error")
        self.state.flush()
        return web.json_response({"ok": False, "error": text, "reported": True}, status=status)

    def _fresh_folder(self) -> Path:
        """An empty working folder for the next load (the previous one is removed)."""
        folder = self.folder / "current"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self._series = []
        self.state.dicom_choices = []
        return folder

    # -- opening -------------------------------------------------------------------------------

    def _begin(self, text: str) -> None:
        self.state.loading, self.state.loading_text = True, text
        self.state.flush()

    def _end(self) -> None:
        self.state.loading, self.state.loading_text = False, ""
        self.state.flush()

    async def _in_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def open_file(self, path: Path, name: str) -> dict:
        """Open a volume file, a DICOM zip or a DICOM folder; returns the page's outcome."""
        self._begin(f"opening '{name}'")
        try:
            if path.is_dir() or name.lower().endswith(ZIP_SUFFIX):
                return await self._open_dicom(path, name)
            image = await self._in_thread(read_volume_file, path, name, self.limits)
            return self._show(image)
        except ImageError as error:
            self.message(str(error), "error")
            return {"ok": False, "error": str(error), "reported": True}
        except Exception as error:                       # unexpected: say so, lose nothing
            log.exception("opening %s failed", name)
            text = f"'{name}' could not be opened: {error}"
            self.message(text, "error")
            return {"ok": False, "error": text, "reported": True}
        finally:
            self._end()

    async def _open_dicom(self, path: Path, name: str) -> dict:
        folder = path
        if not path.is_dir():
            folder = self.folder / "current" / "dicom"
            folder.mkdir(parents=True, exist_ok=True)
            self.state.loading_text = f"unpacking '{name}'"
            self.state.flush()
            await self._in_thread(unpack_zip, path, folder, self.limits)
        series = await self._in_thread(find_dicom_series, folder)
        if not series:
            raise ImageError(f"'{name}' holds no DICOM image series SlicerFM can read")
        if len(series) > 1:
            self._series = series
            self.state.dicom_choices = [{"index": i, "label": s.label()} for i, s in enumerate(series)]
            self.message(f"'{name}' holds {len(series)} DICOM series: choose the one to open", "warning")
            return {"ok": True, "choose_series": len(series)}
        image = await self._in_thread(read_dicom_series, series[0], self.limits)
        return self._show(image)

    def _show(self, image: LoadedImage) -> dict:
        self.open_image(image)
        shape = "x".join(str(v) for v in image.array.shape[::-1])
        self.message(f"Opened '{image.name}' ({shape} voxels)", "info")
        return {"ok": True, "name": image.name}

    async def choose_series(self, index: int) -> dict:
        """Open series ``index`` of the last multi-series DICOM zip."""
        if not 0 <= int(index) < len(self._series):
            self.message("that DICOM series is no longer available: upload the zip again", "error")
            return {"ok": False}
        series = self._series[int(index)]
        self.state.dicom_choices = []
        self._begin(f"opening {series.label()}")
        try:
            return self._show(await self._in_thread(read_dicom_series, series, self.limits))
        except ImageError as error:
            self.message(str(error), "error")
            return {"ok": False, "error": str(error)}
        finally:
            self._end()

    async def open_data_entry(self, key: str) -> dict:
        """Open an entry of the data folder listing (``key``: its relative path)."""
        if self.data_dir is None:
            self.message("this server has no data folder: upload a file instead", "error")
            return {"ok": False}
        if self.state.loading:
            self.message("another image is still being opened: wait for it", "warning")
            return {"ok": False}
        try:
            entry = resolve_entry(self.data_dir, str(key))
        except ImageError as error:
            self.message(str(error), "error")
            return {"ok": False}
        self._fresh_folder()                      # a zip is unpacked there, never beside it
        return await self.open_file(self.data_dir / entry.key, Path(entry.key).name)
