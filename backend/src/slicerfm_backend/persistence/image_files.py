"""Uploaded images in the state directory: ``images/<id>.sfm`` is the upload's message as it
arrived (already compressed; written while it streams in) and ``images/<id>.json`` lists
the owners. An image evicted from memory, or held before a restart, is read back from here
when a session uses it; a file no session needs any more is deleted."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Set

from slicerfm_client import wire

from .state_dir import StateDirectory, storage_error, write_atomically

log = logging.getLogger(__name__)

READ_BYTES = 4 << 20


class ImageFileWriter:
    """Writes one upload's bytes while they arrive; ``commit`` or ``abort`` at the end."""

    def __init__(self, files: "ImageFiles", image_id: str):
        self.files = files
        self.image_id = image_id
        self.part = files.folder / f"{image_id}.{os.getpid()}.{id(self)}.part"
        self._handle = None

    def write(self, data: bytes) -> None:
        try:
            if self._handle is None:
                self._handle = open(self.part, "wb")
            self._handle.write(data)
        except OSError as error:
            self.files.state.report(error)
            self.abort()
            raise storage_error(error, "this image") from None

    def commit(self, owners: Iterable[str]) -> None:
        try:
            if self._handle is not None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
                self._handle = None
            os.replace(self.part, self.files.message_path(self.image_id))
            self.files.set_owners(self.image_id, owners)
        except OSError as error:
            self.files.state.report(error)
            self.abort()
            raise storage_error(error, "this image") from None

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        try:
            self.part.unlink()
        except OSError:
            pass


class ImageFiles:
    def __init__(self, state: StateDirectory):
        self.state = state
        self.folder = state.images
        for stale in self.folder.glob("*.part"):  # uploads cut off by a crash
            stale.unlink(missing_ok=True)

    def message_path(self, image_id: str) -> Path:
        return self.folder / f"{image_id}.sfm"

    def owners_path(self, image_id: str) -> Path:
        return self.folder / f"{image_id}.json"

    def writer(self, image_id: str) -> ImageFileWriter:
        return ImageFileWriter(self, image_id)

    def exists(self, image_id: str) -> bool:
        return self.message_path(image_id).is_file() and self.owners_path(image_id).is_file()

    def owners(self, image_id: str) -> Set[str]:
        try:
            return set(json.loads(self.owners_path(image_id).read_text(encoding="utf-8"))["owners"])
        except (OSError, ValueError, KeyError):
            return set()

    def set_owners(self, image_id: str, owners: Iterable[str]) -> None:
        """Raises OSError (the caller answers 503)."""
        write_atomically(self.owners_path(image_id), json.dumps({"owners": sorted(owners)}).encode("utf-8"))

    def read(self, image_id: str, on_header: Optional[Callable[[wire.Header], None]] = None):
        """``(header, array)`` of a stored image, decoded chunk by chunk."""
        with open(self.message_path(image_id), "rb") as handle:
            return wire.decode_stream(iter(lambda: handle.read(READ_BYTES), b""), on_header)

    def ids(self) -> List[str]:
        return [path.stem for path in self.folder.glob("*.sfm")]

    def delete(self, image_id: str) -> None:
        for path in (self.message_path(image_id), self.owners_path(image_id)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as error:
                log.warning("could not delete a stored image file (%s)", error.strerror)
