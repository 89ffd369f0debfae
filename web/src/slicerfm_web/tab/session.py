"""The Slicer module's Logic in a tab: one backend session, its work off the event loop.

The Logic is ``SlicerFMLib.logic.SlicerFMCoreLogic`` -- the module's own Logic without
Slicer's parameter node -- in background mode: one connection, and the interactive,
registration and automatic-segmentation features, each on a worker thread of its own
(network there; prepare and apply, i.e. every MRML read and write, on the main thread).
The Qt module ticks the Logic's ``WorkerPump`` from a ``QTimer``; here an asyncio task
ticks it (:class:`LoopPump`), and is woken the moment a task finishes (a done-callback on
its future) or new work is submitted, so the web layer adds no polling delay to a click.

What the Logic reports goes to the page: messages (``state.messages``, the newest in
``state.message``), whether it is working and on what (``state.busy``, ``state.busy_text``),
undo / redo / lock availability, per result the server's timings (``state.last_result``)
and the progress of server jobs (``state.auto_progress``, ``state.registration_progress``,
and with a slice engine -- ``state.slice_engine`` -- its propagation:
``state.propagation_progress``, cancelled by :meth:`Session.cancel_propagation`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, List, Optional

from slicerfm_client import errors

from SlicerFMLib.connection import REMOTE, ConnectionSettings, describe_error
from SlicerFMLib.logic import (AUTO_SEGMENTATION, CONNECTION, PROPAGATION, REGISTRATION,
                               SlicerFMCoreLogic)
from SlicerFMLib.pump import WorkerPump

log = logging.getLogger(__name__)

MAX_MESSAGES = 40
RETRY_CONNECT_S = 5.0
USER_ERRORS = (ValueError, RuntimeError, errors.SlicerFMError)
IDLE_TICK_S, BUSY_TICK_S = 0.5, 0.1
IDLE_JOB = {"running": False, "text": "", "percent": None}


def propagation_result(update) -> bool:
    """Whether a mask update is a finished propagation job's change (a slice engine's),
    not the answer to a click: it has no round trip of its own to show."""
    status = update.propagation or {}
    return status.get("kind") == "propagate" and status.get("state") == "done"


class LoopPump:
    """Ticks a ``WorkerPump`` (never blocking: ``wait_s=0``) on the asyncio loop."""

    def __init__(self, pump: WorkerPump):
        self.pump = pump
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._event: Optional[asyncio.Event] = None
        self._task = None
        self._hooked = set()

    def wake(self) -> None:
        """Tick soon; safe from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def start(self) -> None:
        self._loop = asyncio.get_event_loop()
        self._event = asyncio.Event()
        self._task = self._loop.create_task(self._run())

    def _hook(self) -> None:
        """A done-callback on every pending task's future wakes the loop when it finishes."""
        for runner in self.pump.runners:
            task = runner.current()
            if task is not None and task.future is not None and id(task.future) not in self._hooked:
                self._hooked.add(id(task.future))
                task.future.add_done_callback(lambda _future: self.wake())
        if len(self._hooked) > 10_000:
            self._hooked.clear()

    async def _run(self) -> None:
        while True:
            self._event.clear()
            try:
                pending = self.pump.tick()
            except Exception:                 # a result could not be applied: keep pumping
                log.exception("SlicerFM web: delivering a result failed")
                pending = 0
            self._hook()
            try:
                await asyncio.wait_for(self._event.wait(), BUSY_TICK_S if pending else IDLE_TICK_S)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Session:
    """The tab's Logic (``core``), its backend connection and what the page shows of it."""

    def __init__(self, state, backend_url: str, backend_token: str = "", ca_bundle: str = "",
                 allow_insecure_http: bool = False):
        self.state = state
        self.settings = ConnectionSettings(mode=REMOTE, url=backend_url, token=backend_token,
                                           ca_bundle=ca_bundle, allow_insecure_http=allow_insecure_http)
        self.core = SlicerFMCoreLogic(background=True)
        self.interactive = self.core.interactive
        self.registration = self.core.registration
        self.auto = self.core.autoSegmentation
        self.core.messageCallback = self._feature_message
        self.core.changedCallback = self._changed
        self.pump = LoopPump(WorkerPump(self.core.runners(), wait_s=0.0, after_tick=self.publish))
        self.on_changed: List[Callable[[], None]] = []
        self.on_connected: List[Callable[[object], None]] = []
        self._connecting = False
        self._next_try = 0.0
        self._result_seq = 0
        self._last_update = None
        self._placed_at = None
        self._click_at = None
        state.update({"connected": False, "server_text": "connecting to the SlicerFM backend...",
                      "engines": [], "engine": "classic", "messages": [], "message": None,
                      "busy": False, "busy_text": "", "can_undo": False, "can_redo": False,
                      "segment_locked": False, "last_result": None, "slice_engine": False,
                      "auto_progress": IDLE_JOB, "registration_progress": IDLE_JOB,
                      "propagation_progress": IDLE_JOB})

    # -- connection ----------------------------------------------------------------------------

    def start(self) -> None:
        self.pump.start()
        self.connect()

    def connect(self) -> None:
        if self._connecting:
            return
        self._connecting = True
        self.core.connect(self.settings, onDone=self._connected)
        self.pump.wake()

    def _connected(self, status) -> None:
        self._connecting = False
        self.state.connected = True
        self.state.server_text = (f"SlicerFM backend {status.server_version} "
                                  f"(protocol {status.protocol_version})")
        engines = []
        for engine in status.engines:
            ready = bool(engine.get("weights_present", True))
            engines.append({"name": engine.get("name"), "device": engine.get("device", "?"),
                            "ready": ready, "kinds": list(engine.get("prompt_kinds", [])),
                            "slice": bool(engine.get("slice_prompts", False)),
                            "title": f"{engine.get('name')} · {engine.get('device', '?')} · "
                                     f"{'ready' if ready else 'weights missing'}"})
        self.state.engines = engines
        names = [e["name"] for e in engines if e["ready"] and "point" in e["kinds"]]
        if self.state.engine not in names and names:
            self.state.engine = "classic" if "classic" in names else names[0]
        self.interactive.engine = self.state.engine
        self.state.slice_engine = self.interactive.slicePrompts()
        for callback in self.on_connected:
            callback(status)

    def set_engine(self, name: str) -> None:
        engine = next((e for e in self.state.engines if e["name"] == name), None)
        if engine is None:
            raise ValueError(f"the server does not serve the engine {name!r}")
        if not engine["ready"]:
            raise ValueError(f"engine {name!r} cannot run: its weights are missing on the server "
                             f"(slicerfm-backend weights fetch {name})")
        self.interactive.engine = name
        self.state.engine = name
        self.state.slice_engine = bool(engine["slice"])

    def cancel_propagation(self) -> None:
        """The propagation line's Cancel: the server stops it; the prompted slice stays."""
        if not self.interactive.cancelPropagation():
            raise ValueError("no propagation is running")

    # -- the page's view of the Logic -----------------------------------------------------------

    def _feature_message(self, feature: str, text: str, level: str) -> None:
        if feature == CONNECTION and level == "error":
            self._connecting = False
            self._next_try = time.monotonic() + RETRY_CONNECT_S
            self.state.connected = False
            self.state.server_text = f"not connected: {text}"
            text = f"Cannot reach the SlicerFM backend: {text} (retrying every {RETRY_CONNECT_S:.0f} s)"
        self.message(text, level)

    def message(self, text: str, level: str = "info") -> None:
        entry = {"text": text, "level": level, "time": time.strftime("%H:%M:%S")}
        self.state.message = entry
        self.state.messages = ([entry] + list(self.state.messages or []))[:MAX_MESSAGES]
        if level == "error":
            self.state.snackbar = True
        getattr(log, level if level in ("info", "warning", "error") else "info")("%s", text)

    def _changed(self) -> None:
        update = self.interactive.lastUpdate
        if update is not None and update is not self._last_update \
                and not propagation_result(update):     # a job's change: the message says it
            self._last_update = update
            self._result_seq += 1
            applied = time.monotonic()
            self.state.last_result = {
                "seq": self._result_seq, "roundtrip_ms": round(float(update.roundtrip_ms), 1),
                "server_ms": round(float(update.timings_ms.get("server", 0.0)), 1),
                "engine_ms": round(float(update.timings_ms.get("engine", 0.0)), 1),
                "voxels": int(update.voxels),
                # this tab's monotonic clock (ms): click message received (a point tool's
                # click sent as one message, tab/clicks.py), prompt placed, result applied
                "click_at_ms": None if self._click_at is None else self._click_at * 1000.0,
                "placed_at_ms": None if self._placed_at is None else self._placed_at * 1000.0,
                "applied_at_ms": applied * 1000.0,
                "tab_ms": None if self._placed_at is None
                else round((applied - self._placed_at) * 1000.0, 1)}
            self._placed_at = self._click_at = None
        for callback in self.on_changed:
            callback()
        self.publish()

    def publish(self) -> None:
        """Busy / undo / lock / job progress for the page (main thread, after each tick);
        only what changed is sent."""
        current = self.core.pendingInteraction()
        values = {"busy": current is not None,
                  "busy_text": f"{current.description} ({current.elapsed_s():.0f} s)" if current else ""}
        try:
            locked = self.interactive.isSegmentLocked()
            values.update(can_undo=self.interactive.canUndo() and not locked,
                          can_redo=self.interactive.canRedo() and not locked,
                          segment_locked=locked)
        except Exception:          # a node removed meanwhile: nothing to offer
            values.update(can_undo=False, can_redo=False, segment_locked=False)
        running = dict(self.core.activeJobs())
        for feature, key in ((AUTO_SEGMENTATION, "auto_progress"), (REGISTRATION, "registration_progress"),
                             (PROPAGATION, "propagation_progress")):
            snapshot = running.get(feature)
            values[key] = {"running": snapshot is not None,
                           "text": self.core.jobText(feature, snapshot) if snapshot else "",
                           "percent": None if snapshot is None or snapshot.fraction is None
                           else round(100.0 * snapshot.fraction, 1)}
        for key, value in values.items():
            if self.state[key] != value:
                self.state[key] = value
        if not self.state.connected and not self._connecting and time.monotonic() >= self._next_try:
            self.connect()
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
            self.pump.wake()
            self.publish()
        return True

    def click_received(self) -> None:
        """A point tool's click came from the page as one message (benchmark timing)."""
        if self._placed_at is None:
            self._click_at = time.monotonic()

    def placed(self) -> None:
        """A prompt was placed in a view (its interaction is being submitted): note the time
        and tick the Logic at once."""
        if self._placed_at is None:
            self._placed_at = time.monotonic()
        self.pump.wake()

    def set_inputs(self, volume_node, segmentation_node, segment_id: str) -> None:
        self.interactive.setInputs(volume_node, segmentation_node, segment_id)
        self.auto.volumeNode, self.auto.segmentationNode = volume_node, segmentation_node
        self.publish()

    def close(self) -> None:
        """Cancel work and release the backend session (tab closed)."""
        try:
            self.interactive.removeObservers()
            self.core.disconnect()
        finally:
            self.pump.stop()
            self.core.shutdown()
