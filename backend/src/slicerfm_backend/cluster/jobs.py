"""Background jobs on the cluster: the worker's job manager, the work in a Ray task.

A worker keeps the single-process :class:`~slicerfm_backend.jobs.JobManager` (ids,
queue, per-user order and limits, status, cancel, results, time to live); only where the
work runs changes. :class:`ClusterJobExecutor` is that manager's ``execute``: an
:class:`~slicerfm_backend.job_work.EngineWork` becomes a Ray task with the job resources
(``num_gpus``/``num_cpus``), which loads the engine in its own process (once per process)
and runs the same ``run`` function. The task reports progress through the worker actor
(:meth:`ClusterJobExecutor.progress`), whose answer says whether the job was cancelled; a
cancel also cancels the task (at once while it waits for resources). A task whose process
or machine dies fails the job with a message that says so.

A task that shares its worker's device -- the same machine and the same GPU (or, without
GPUs, the same machine's CPUs) -- asks the worker for each device step
(:meth:`ClusterJobExecutor.step`): the worker holds a slot of its device scheduler for
the step, as the job thread of one server does, so the worker's clicks go before the job's
next step and wait for at most one step. A task on another device runs its steps freely.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from ..errors import DomainError, EngineError, JobCancelled
from ..job_work import EngineWork

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often the job thread looks at a task and at the cancel flag
PROGRESS_EVERY_S = 0.25  # the task relays progress at most this often (stage changes always)
CANCEL_GRACE_S = 30.0  # how long a cancelled task may take to stop before the job gives up on it


class ClusterJobExecutor:
    """``JobManager.execute`` of a cluster worker. ``task_options``: Ray resources of a job
    task; ``relay``: the handle whose ``job_progress`` the task calls (default: the actor
    this runs in)."""

    def __init__(self, settings, task_options: Dict[str, Any], relay=None):
        self.settings = settings
        self._relay = relay
        self.task_options = dict(task_options)
        self._contexts: Dict[str, Any] = {}
        self._steps: Dict[str, Any] = {}  # job id -> the device step it holds (a context manager)
        self._lock = threading.Lock()
        self._placement: Optional[Dict[str, Any]] = None
        self._in_actor = relay is None  # a relay given: tests in one process, no placement

    def __call__(self, work: Callable, ctx) -> dict:
        if not isinstance(work, EngineWork):
            return work(ctx)  # plain callables (tests, plugins) run here as on one server

        with self._lock:
            self._contexts[ctx.job_id] = ctx
        try:
            task = remote_task().options(max_retries=0, **self.task_options)
            ref = task.remote(self.settings, work, ctx.job_id, self.relay(), self.placement())
            result, arrays = self._wait(ref, ctx)
        finally:
            with self._lock:
                self._contexts.pop(ctx.job_id, None)
                held = self._steps.pop(ctx.job_id, None)
            if held is not None:  # the task ended (or died) inside a step: free the device
                _leave(held)
        for name, (array, meta) in arrays.items():
            ctx.add_array(name, array, meta)
        return result

    def relay(self):
        if self._relay is None:
            import ray

            self._relay = ray.get_runtime_context().current_actor
        return self._relay

    def placement(self) -> Optional[Dict[str, Any]]:
        """Where this worker runs: ``{"node_id", "gpu_ids"}`` (None outside a Ray actor:
        a task then never shares its device)."""
        if self._placement is None and self._in_actor:
            import ray

            context = ray.get_runtime_context()
            self._placement = {"node_id": context.get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
        return self._placement

    def _wait(self, ref, ctx) -> Tuple[dict, dict]:
        import ray

        cancelled_at = None
        while not ray.wait([ref], timeout=POLL_S)[0]:
            if ctx.cancelled and cancelled_at is None:
                ray.cancel(ref)  # a task still waiting for resources never starts
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                raise JobCancelled()
        try:
            return ray.get(ref)
        except Exception as error:  # noqa: BLE001 -- every Ray failure becomes the job's error
            raise job_error(error, ctx.cancelled) from None

    def progress(self, job_id: str, stage: str, done: int, total: int) -> bool:
        """A task's progress report; True when the job was cancelled (or is unknown here)."""
        with self._lock:
            ctx = self._contexts.get(job_id)
        if ctx is None:
            return True
        try:
            ctx.progress(stage, done, total)
        except JobCancelled:
            return True
        return False

    def step(self, job_id: str, begin: bool) -> bool:
        """A task sharing this worker's device starts (``begin``) or ends one device step:
        a slot of the device's scheduler for the job's owner, after any waiting click
        (blocks until granted). True when the job should stop (cancelled, or unknown here)."""
        if not begin:
            with self._lock:
                held = self._steps.pop(job_id, None)
            return _leave(held) if held is not None else True
        with self._lock:
            ctx = self._contexts.get(job_id)
        if ctx is None:
            return True
        held = ctx.device_step()
        try:
            held.__enter__()  # noqa: PLC2801 -- held across two calls from the task
        except JobCancelled:
            return True
        with self._lock:
            if job_id in self._contexts:
                self._steps[job_id] = held
                return False
        _leave(held)  # the job ended while its step waited for the device
        return True


def _leave(step) -> bool:
    """End a device step held across calls; True when the job was cancelled meanwhile."""
    try:
        step.__exit__(None, None, None)
    except JobCancelled:
        return True
    return False


def job_error(error: Exception, cancelled: bool) -> Exception:
    """What a failed task means for its job: JobCancelled, the task's own error (a
    DomainError or an engine's message), or an EngineError that says the process died."""
    from ray import exceptions

    if cancelled or isinstance(error, (exceptions.TaskCancelledError, JobCancelled)):
        return JobCancelled()
    if isinstance(error, exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, JobCancelled):
            return JobCancelled()
        if isinstance(cause, (DomainError, EngineError, ValueError)):
            return cause
        return EngineError(f"the job failed on the cluster ({type(cause).__name__ if cause else 'error'}: "
                           f"{cause if cause is not None else error})")
    if isinstance(error, (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.ObjectLostError,
                          exceptions.OwnerDiedError, exceptions.RayActorError, exceptions.RaySystemError)):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return EngineError(f"the cluster process running this job died ({type(error).__name__}"
                           f"{': ' + first_line[:300] if first_line else ''}); your inputs are unchanged, "
                           "submit the job again")
    return EngineError(f"the job failed on the cluster ({type(error).__name__}: {error})")


# -- the task's side ------------------------------------------------------------------------

_ENGINES: Dict[Tuple[str, str], Any] = {}
_ENGINES_LOCK = threading.Lock()


def engines_for(settings, family: str):
    """This process's engine manager of ``family`` for ``settings`` (engines load once)."""
    from ..engine_core.served import engine_managers

    key = (settings.model_dump_json(), family)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            segmentation, registration = engine_managers(settings)
            _ENGINES[(key[0], "segmentation")] = segmentation
            _ENGINES[(key[0], "registration")] = registration
        return _ENGINES[key]


class TaskJobContext:
    """What a job's work sees inside a Ray task (the interface of
    :class:`~slicerfm_backend.jobs.JobContext`): progress goes to the worker, arrays come
    back with the task's result, the device is the task's own."""

    def __init__(self, job_id: str, relay, shares_device: bool = False):
        self._job_id = job_id
        self._relay = relay
        self.shares_device = shares_device
        self._cancelled = False
        self._last_stage: Optional[str] = None
        self._last_sent = 0.0
        self.arrays: Dict[str, Tuple[np.ndarray, dict]] = {}

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def check_cancelled(self) -> None:
        if self._cancelled:
            raise JobCancelled()

    def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        now = time.monotonic()
        if stage != self._last_stage or now - self._last_sent >= PROGRESS_EVERY_S or (total and done >= total):
            import ray

            self._last_stage, self._last_sent = stage, now
            try:
                self._cancelled = bool(ray.get(self._relay.job_progress.remote(
                    self._job_id, str(stage), int(done), int(total))))
            except ray.exceptions.RayError:  # the worker holding the job is gone: stop
                log.warning("the worker holding this job is gone; stopping it")
                self._cancelled = True
        self.check_cancelled()

    @contextlib.contextmanager
    def device_step(self) -> Iterator[None]:
        """One step on the task's device; on the worker's own device, in a slot of the
        worker's scheduler (after its waiting clicks)."""
        self.check_cancelled()
        if not self.shares_device:
            yield
            self.check_cancelled()
            return
        if self._ask_worker(begin=True):
            raise JobCancelled()
        try:
            yield
        finally:
            stop = self._ask_worker(begin=False)
        if stop:
            raise JobCancelled()

    def _ask_worker(self, begin: bool) -> bool:
        import ray

        try:
            stop = bool(ray.get(self._relay.job_step.remote(self._job_id, begin)))
        except ray.exceptions.RayError:  # the worker holding the job is gone: stop
            log.warning("the worker holding this job is gone; stopping it")
            stop = True
        self._cancelled = self._cancelled or stop
        return stop

    def add_array(self, name: str, array: np.ndarray, meta: Optional[dict] = None) -> None:
        self.arrays[str(name)] = (np.ascontiguousarray(array), dict(meta or {}))


_REMOTE_TASK = None


def remote_task():
    """:func:`run_engine_work` as a Ray remote function (made once per process)."""
    global _REMOTE_TASK
    if _REMOTE_TASK is None:
        import ray

        _REMOTE_TASK = ray.remote(run_engine_work)
    return _REMOTE_TASK


def shares_device(placement: Optional[Dict[str, Any]]) -> bool:
    """Whether this task runs on the device of the worker at ``placement``: the same node
    and a GPU in common, or the same node and no GPUs on either side."""
    if not placement:
        return False
    import ray

    if ray.get_runtime_context().get_node_id() != placement.get("node_id"):
        return False
    mine, theirs = {str(g) for g in ray.get_gpu_ids()}, set(placement.get("gpu_ids") or ())
    return bool(mine & theirs) if (mine or theirs) else True


def run_engine_work(settings, work: EngineWork, job_id: str, relay,
                    placement: Optional[Dict[str, Any]] = None) -> Tuple[dict, dict]:
    """The Ray task: run ``work`` with this process's engine; ``(result, arrays)``.
    ``placement``: where the worker holding the job runs (:meth:`ClusterJobExecutor.placement`)."""
    ctx = TaskJobContext(job_id, relay, shares_device(placement))
    result = work.run_with(engines_for(settings, work.family), ctx)
    ctx.check_cancelled()
    return dict(result or {}), ctx.arrays
