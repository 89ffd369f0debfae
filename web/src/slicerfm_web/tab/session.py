"""The Slicer module's Logic in a tab: one backend session, work off the event loop.

The Logics are ``SlicerFMLib``'s, exactly as the module's widget uses them: the interactive
``InteractiveSegmentationLogic`` and the ``RegistrationLogic`` / ``AutoSegmentationLogic``
sharing its connection, each on a ``BackgroundWorker`` of its own (network in a worker
thread; prepare and apply, i.e. every MRML read and write, on the main thread). The Qt
module polls its workers from a ``QTimer``; here an asyncio task does (:class:`WorkerPump`),
woken the moment a task finishes, so the web layer adds no polling delay to a click.

Everything the Logic reports goes to the page: messages (``state.messages``, the newest in
``state.message``), whether it is working and on what (``state.busy``, ``state.busy_text``),
undo/redo/lock availability, and per result the server's timings (``state.last_result``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, List, Optional

from slicerfm_client import errors

from SlicerFMLib.auto_segment_logic import AutoSegmentationLogic
from SlicerFMLib.connection import REMOTE, ConnectionSettings, describe_error
from SlicerFMLib.logic import InteractiveSegmentationLogic
from SlicerFMLib.registration_logic import RegistrationLogic
from SlicerFMLib.worker import BackgroundWorker

log = logging.getLogger(__name__)

MAX_MESSAGES = 40
RETRY_CONNECT_S = 5.0
USER_ERRORS = (ValueError, RuntimeError, errors.SlicerFMError)


class NotifyingWorker(BackgroundWorker):
    """A ``BackgroundWorker`` that calls ``wake()`` (any thread) when a task finishes."""

    def __init__(self, wake: Callable[[], None]):
        super().__init__()
        self._wake = wake

    def submit(self, fn, *args, **kwargs):
        task = super().submit(fn, *args, **kwargs)
        task.future.add_done_callback(lambda _future: self._wake())
        return task


class WorkerPump:
    """Delivers finished tasks of several workers on the event loop (main thread)."""

    def __init__(self, on_tick: Callable[[], None]):
        self.workers: List[BackgroundWorker] = []
        self.on_tick = on_tick
        self._event: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._task = None

    def wake(self) -> None:
        """Safe from any thread."""
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    def worker(self) -> NotifyingWorker:
        worker = NotifyingWorker(self.wake)
        self.workers.append(worker)
        return worker

    def start(self) -> None:
        self._loop = asyncio.get_event_loop()
        self._event = asyncio.Event()
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._event.clear()
            busy = False
            for worker in self.workers:
                try:
                    busy = worker.poll() > 0 or busy
                except Exception:                  # a callback failed: keep the pump alive
                    log.exception("SlicerFM web: a result could not be applied")
            try:
                self.on_tick()
            except Exception:
                log.exception("SlicerFM web: the page state could not be updated")
            try:
                await asyncio.wait_for(self._event.wait(), 0.25 if busy else 1.0)
            except asyncio.TimeoutError:
                pass

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for worker in self.workers:
            worker.shutdown()


class Session:
    """The Logics of one tab, their backend connection and what the page shows of them."""

    def __init__(self, state, backend_url: str, backend_token: str = ""):
        self.state = state
        self.settings = ConnectionSettings(mode=REMOTE, url=backend_url, token=backend_token)
        self.pump = WorkerPump(self.publish)
        self.logic = InteractiveSegmentationLogic(runner=self.pump.worker())
        self.logic.messageCallback = self.message
        self.logic.changedCallback = self._changed
        self.registration = RegistrationLogic(self.logic.connection, runner=self.pump.worker())
        self.auto = AutoSegmentationLogic(self.logic.connection, runner=self.pump.worker())
        for job in (self.registration, self.auto):
            job.messageCallback = self.message
            job.changedCallback = self._changed
            job.progressListener = lambda _snapshot: self.pump.wake()
        self.on_changed: List[Callable[[], None]] = []
        self.on_connected: List[Callable[[object], None]] = []
        self._connecting = False
        self._next_try = 0.0
        self._result_seq = 0
        state.update({"connected": False, "server_text": "connecting to the SlicerFM backend...",
                      "engines": [], "engine": "classic", "messages": [], "message": None,
                      "busy": False, "busy_text": "", "can_undo": False, "can_redo": False,
                      "segment_locked": False, "last_result": None})

    # -- connection ----------------------------------------------------------------------------

    def start(self) -> None:
        self.pump.start()
        self.connect()

    def connect(self) -> None:
        if self._connecting:
            return
        self._connecting = True

        def done(status):
            self._connecting = False
            self._connected(status)

        def failed(error):
            self._connecting = False
            self._next_try = time.monotonic() + RETRY_CONNECT_S
            self.state.connected = False
            self.state.server_text = f"not connected: {describe_error(error, self.settings)}"
            self.message(f"Cannot reach the SlicerFM backend: {describe_error(error, self.settings)} "
                         f"(retrying every {RETRY_CONNECT_S:.0f} s)", "error")

        self.logic.runner.submit(self.logic.connection.connect, self.settings,
                                 description="Connecting", on_done=done, on_error=failed)

    def _connected(self, status) -> None:
        self.state.connected = True
        self.state.server_text = (f"SlicerFM backend {status.server_version} "
                                  f"(protocol {status.protocol_version})")
        engines = []
        for engine in status.engines:
            ready = bool(engine.get("weights_present", True))
            engines.append({"name": engine.get("name"), "device": engine.get("device", "?"),
                            "ready": ready,
                            "kinds": list(engine.get("prompt_kinds", [])),
                            "title": f"{engine.get('name')} · {engine.get('device', '?')} · "
                                     f"{'ready' if ready else 'weights missing'}"})
        self.state.engines = engines
        names = [e["name"] for e in engines if e["ready"] and "point" in e["kinds"]]
        if self.state.engine not in names and names:
            self.state.engine = "classic" if "classic" in names else names[0]
        self.logic.engine = self.state.engine
        self.message(f"Connected to the {self.state.server_text}", "info")
        for callback in self.on_connected:
            callback(status)

    def set_engine(self, name: str) -> None:
        engine = next((e for e in self.state.engines if e["name"] == name), None)
        if engine is None:
            raise ValueError(f"the server does not serve the engine {name!r}")
        if not engine["ready"]:
            raise ValueError(f"engine {name!r} cannot run: its weights are missing on the server "
                             f"(slicerfm-backend weights fetch {name})")
        self.logic.engine = name
        self.state.engine = name

    # -- the page's view of the Logic -----------------------------------------------------------

    def message(self, text: str, level: str = "info") -> None:
        entry = {"text": text, "level": level, "time": time.strftime("%H:%M:%S")}
        self.state.message = entry
        if level == "error":
            self.state.snackbar = True
        self.state.messages = ([entry] + list(self.state.messages or []))[:MAX_MESSAGES]
        getattr(log, level if level in ("info", "warning", "error") else "info")("%s", text)

    def _changed(self) -> None:
        update = self.logic.lastUpdate
        if update is not None and id(update) != getattr(self, "_last_update_id", None):
            self._last_update_id = id(update)
            self._result_seq += 1
            self.state.last_result = {
                "seq": self._result_seq, "roundtrip_ms": round(float(update.roundtrip_ms), 1),
                "server_ms": round(float(update.timings_ms.get("server", 0.0)), 1),
                "engine_ms": round(float(update.timings_ms.get("engine", 0.0)), 1),
                "voxels": int(update.voxels)}
        for callback in self.on_changed:
            callback()
        self.publish()

    def publish(self) -> None:
        """Busy / undo / lock state for the page (main thread)."""
        current = self.logic.runner.current()
        busy = current is not None
        self.state.busy = busy
        self.state.busy_text = f"{current.description} ({current.elapsed_s():.1f} s)" if busy else ""
        try:
            self.state.can_undo = self.logic.canUndo() and not self.logic.isSegmentLocked()
            self.state.can_redo = self.logic.canRedo() and not self.logic.isSegmentLocked()
            self.state.segment_locked = self.logic.isSegmentLocked()
        except Exception:      # a node removed meanwhile: nothing to offer
            self.state.can_undo = self.state.can_redo = self.state.segment_locked = False
        if not self.state.connected and not self._connecting and time.monotonic() >= self._next_try:
            self.connect()
        for job, key in ((self.auto, "auto_progress"), (self.registration, "registration_progress")):
            snapshot = job.progress.snapshot()
            self.state[key] = {"running": job.running, "text": snapshot.text(),
                               "percent": None if snapshot.fraction is None
                               else round(100.0 * snapshot.fraction, 1)}
        self.state.flush()

    # -- user actions ---------------------------------------------------------------------------

    def attempt(self, action: Callable, *args) -> bool:
        """Run a user action; a refusal becomes a message in the page. True when it ran."""
        try:
            action(*args)
        except USER_ERRORS as error:
            self.message(describe_error(error, self.settings), "error")
            return False
        finally:
            self.publish()
        return True

    def set_inputs(self, volume_node, segmentation_node, segment_id: str) -> None:
        self.logic.setInputs(volume_node, segmentation_node, segment_id)
        self.auto.volumeNode, self.auto.segmentationNode = volume_node, segmentation_node
        self.publish()

    def close(self) -> None:
        """Cancel work and release the backend session (tab closed)."""
        for job in (self.auto, self.registration):
            job.cancel()
        try:
            self.logic.removeObservers()
            self.logic.cancel()
            self.logic.connection.disconnect()
        finally:
            self.pump.shutdown()
