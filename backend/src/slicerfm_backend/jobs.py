"""Background jobs: long work (registration, automatic segmentation) with progress and cancel.

A job is submitted by a feature's endpoint and runs on its device's job thread, one job at
a time per device, taken round-robin between the users who submitted them
(:class:`.job_queue.RoundRobinQueue`). Inside, ``work(ctx)`` reports progress through
:class:`JobContext` and holds the device only one step at a time (``ctx.device_step()``)
through the device's scheduler, *after* any waiting click (:mod:`.scheduler`), so a user
clicking while someone's registration runs waits for one step, not the whole job.

A job belongs to the user who submitted it: for anyone else it does not exist (404). Its
id is unguessable (128 bits); it needs no session, so a result survives a session that
expired while the job ran. Each user may have ``max_jobs_per_user`` jobs waiting or
running. Result arrays count against the job-results budget: a job reserves what its
results will need when it is submitted (503 when that does not fit, even after dropping
results already downloaded), and finished results are kept until downloaded and at most
``ttl_s`` seconds; results already downloaded may be dropped earlier to make room.
The images a job reads are pinned in the image store until it ends.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from slicerfm_client import protocol

from .auth.identity import LOCAL
from .device_memory import free_device_memory, is_out_of_memory, out_of_memory
from .errors import DomainError, EngineError, JobCancelled
from .job_queue import RoundRobinQueue
from .memory import Budget, return_memory_to_system
from .scheduler import BACKGROUND

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class Job:
    """One job's state. Fields are written by its job thread and read under the manager's lock."""

    def __init__(self, kind: str, device: str, work: Callable[["JobContext"], dict],
                 image_ids: Sequence[str], now: float, estimate_s: Optional[float] = None,
                 owner: str = LOCAL.owner):
        self.id = secrets.token_urlsafe(16)
        self.kind = kind
        self.device = device
        self.owner = owner
        self.estimate_s = estimate_s
        self.work = work
        self.image_ids = tuple(image_ids)
        self.created = now
        self.started: Optional[float] = None
        self.finished: Optional[float] = None
        self.state = QUEUED
        self.stage = "queued"
        self.done = 0
        self.total = 0
        self.device_wait_s = 0.0
        self.error: Optional[Dict[str, str]] = None
        self.result: Optional[dict] = None
        self.arrays: Dict[str, Tuple[np.ndarray, dict]] = {}
        self.reserved = 0  # bytes of the job-results budget held for its arrays
        self.downloaded = False
        self.dropped = False
        self.cancel_requested = threading.Event()
        self.committed = False  # the work's result is final: a late cancel no longer applies

    def describe(self, now: float, queue_position: Optional[int] = None) -> dict:
        """The status dict answered by ``GET /api/jobs/{id}`` (see docs/PROTOCOL.md)."""
        elapsed = 0.0 if self.started is None else (self.finished or now) - self.started
        waited = (self.started or self.finished or now) - self.created
        return {
            "job_id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage,
            "done": self.done, "total": self.total,
            "progress": (min(1.0, self.done / self.total) if self.total else
                         (1.0 if self.state == DONE else None)),
            "queue_position": queue_position, "queued_s": round(max(0.0, waited), 3),
            "device_wait_s": round(self.device_wait_s, 3), "elapsed_s": round(elapsed, 3),
            "estimate_s": None if self.estimate_s is None else round(float(self.estimate_s), 1),
            "error": self.error, "result": self.result if self.state == DONE else None,
            "arrays": sorted(self.arrays) if self.state == DONE else [],
        }


class JobContext:
    """What a job's ``work`` sees: progress, cancellation, the device, result arrays."""

    def __init__(self, job: Job, scheduler, manager: "JobManager"):
        self._job = job
        self._scheduler = scheduler
        self._manager = manager

    @property
    def job_id(self) -> str:
        return self._job.id

    @property
    def cancelled(self) -> bool:
        return self._job.cancel_requested.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled()

    def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Report ``done`` of ``total`` units of ``stage``; raises JobCancelled on cancel."""
        self._job.stage, self._job.done, self._job.total = str(stage), int(done), int(total)
        self.check_cancelled()

    @contextlib.contextmanager
    def device_step(self) -> Iterator[None]:
        """Hold the job's device for one step (after any waiting click)."""
        self.check_cancelled()
        with self._scheduler.slot(self._job.owner, BACKGROUND) as ticket:
            self._job.device_wait_s += ticket.wait_s
            yield
        self.check_cancelled()

    def commit_point(self, stage: str = "committed") -> None:
        """The work has made its result permanent (e.g. written a segment): from now on the
        job ends ``done`` even when a cancel arrives, since what it did cannot be taken back
        by cancelling. ``stage`` tells a client polling meanwhile (``"committed"``)."""
        self._job.committed = True
        self._job.stage = str(stage)

    def add_array(self, name: str, array: np.ndarray, meta: Optional[dict] = None) -> None:
        """Store a result array, downloadable as ``GET /api/jobs/{id}/arrays/{name}``; its
        bytes come from what the job reserved (or more of the budget, 503 when full)."""
        array = np.ascontiguousarray(array)
        self._manager.charge(self._job, name, array.nbytes)
        self._job.arrays[str(name)] = (array, dict(meta or {}))


def run_here(work: Callable[[JobContext], dict], ctx: JobContext) -> dict:
    """The default :attr:`JobManager.execute`: the work runs on the job thread."""
    return work(ctx)


class JobManager:
    """Queues, runs, reports and forgets jobs; one job thread per device.

    ``devices(device)`` gives the device's scheduler, shared with interactive inference.
    ``results``: the job-results budget (None: unbounded, for tests of other things).
    ``caches``: the engines' caches, dropped when a job runs out of device memory.
    """

    def __init__(self, devices: Callable[[str], Any], max_jobs: int = 16, ttl_s: float = 1800.0,
                 clock: Callable[[], float] = time.monotonic, max_jobs_per_user: int = 4,
                 results: Optional[Budget] = None, caches=None):
        self._devices = devices
        self.max_jobs = max_jobs
        self.max_jobs_per_user = max_jobs_per_user
        self.ttl_s = ttl_s
        self.results = results
        self._caches = caches
        self._clock = clock
        self._jobs: Dict[str, Job] = {}
        self._queues: Dict[str, RoundRobinQueue] = {}
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        #: Put before every job id; a cluster worker's own, so its ingress finds it by id.
        self.id_prefix = ""
        #: ``execute(work, ctx) -> result``: runs a job's work on its job thread; a cluster
        #: worker replaces it to run :class:`~slicerfm_backend.job_work.EngineWork` elsewhere.
        self.execute: Callable[[Callable[[JobContext], dict], JobContext], dict] = run_here

    # -- submitting and running ----------------------------------------------------------

    def submit(self, kind: str, work: Callable[[JobContext], dict], device: str,
               image_ids: Sequence[str] = (), estimate_s: Optional[float] = None,
               owner: str = LOCAL.owner, result_bytes: int = 0) -> Job:
        """Queue ``work`` on ``device`` for ``owner``; ``server_full`` when too many jobs are
        pending (in all, or of this owner) or the results budget cannot take
        ``result_bytes`` (what the job's arrays will need). ``estimate_s``: the engine's
        expected running time (seconds), shown in the status."""
        with self._lock:
            self._reap_locked()
            pending = [job for job in self._jobs.values() if job.state not in FINISHED]
            if len(pending) >= self.max_jobs:
                raise DomainError(protocol.ERROR_SERVER_FULL,
                                  f"the server already has {len(pending)} jobs waiting or running; try "
                                  "again later or ask the administrator to raise --max-jobs",
                                  retry_after_s=30)
            mine = sum(1 for job in pending if job.owner == owner)
            if mine >= self.max_jobs_per_user:
                raise DomainError(protocol.ERROR_SERVER_FULL,
                                  f"you already have {mine} jobs waiting or running, the most one user "
                                  "may have here (SLICERFM_MAX_JOBS_PER_USER); wait for one to finish",
                                  retry_after_s=30)
            job = Job(kind, device, work, image_ids, self._clock(), estimate_s, owner)
            job.reserved = self._reserve_locked(result_bytes, "this job's results")
            job.id = self.id_prefix + job.id
            self._jobs[job.id] = job
            self._queue_for(device).put(job)
        log.info("job (%s) queued on %s", kind, device)
        return job

    def _reserve_locked(self, nbytes: int, what: str) -> int:
        if self.results is None or nbytes <= 0:
            return 0
        self.results.check_size(nbytes, what)
        if not self.results.fits(nbytes):
            self._drop_downloaded_locked(nbytes)
        return self.results.reserve(nbytes, what)

    def _drop_downloaded_locked(self, nbytes: int) -> None:
        """Drop results already downloaded (oldest first) until ``nbytes`` fit."""
        done = sorted((job for job in self._jobs.values() if job.state == DONE and job.downloaded
                       and job.reserved), key=lambda job: job.finished or 0)
        for job in done:
            if self.results.fits(nbytes):
                break
            job.arrays.clear()
            job.dropped = True
            self.results.release(job.reserved)
            job.reserved = 0

    def charge(self, job: Job, name: str, nbytes: int) -> None:
        """Count a new result array against the job's reservation (reserving more when it
        is larger than estimated)."""
        if self.results is None:
            return
        used = sum(array.nbytes for array, _ in job.arrays.values()) + nbytes
        if used > job.reserved:
            with self._lock:
                job.reserved += self._reserve_locked(used - job.reserved, f"the result {name!r}")

    def _queue_for(self, device: str) -> RoundRobinQueue:
        pending = self._queues.get(device)
        if pending is None:
            pending = self._queues[device] = RoundRobinQueue()
            thread = threading.Thread(target=self._run_jobs, args=(device, pending),
                                      name=f"slicerfm-jobs-{device}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return pending

    def _run_jobs(self, device: str, pending: RoundRobinQueue) -> None:
        while True:
            job = pending.get()
            if job is None:
                return
            with self._lock:  # the queued -> running step is atomic with cancel()
                if job.cancel_requested.is_set() or job.state != QUEUED:
                    continue  # cancelled while queued: already marked
                work = job.work
                job.started = self._clock()
                job.state, job.stage = RUNNING, "starting"
            self._run(job, work, JobContext(job, self._devices(device), self))

    def _run(self, job: Job, work: Callable[[JobContext], dict], ctx: JobContext) -> None:
        try:
            result = self.execute(work, ctx)
            if not job.committed:  # a committed result stands: cancelling cannot undo it
                ctx.check_cancelled()
            job.result = dict(result or {})
            job.state = DONE
        except JobCancelled:
            job.state = CANCELLED
        except DomainError as error:
            job.state, job.error = FAILED, {"error": error.code, "message": error.message}
        except Exception as error:
            job.state, job.error = FAILED, self._failure(job, error)
        finally:
            job.finished = self._clock()
            job.work = None  # drop closures over input arrays
            if job.state != DONE:
                self._free_results(job)
            log.info("job (%s) %s in %.1f s", job.kind, job.state, job.finished - job.started)

    def _failure(self, job: Job, error: Exception) -> Dict[str, str]:
        if isinstance(error, (EngineError, ValueError)):  # the engine's own message for the user
            return {"error": protocol.ERROR_JOB_FAILED, "message": str(error)}
        if is_out_of_memory(error):
            free_device_memory(self._caches)
            refusal = out_of_memory(job.kind, job.device)
            return {"error": refusal.code, "message": refusal.message}
        log.error("job (%s) failed", job.kind, exc_info=error)  # a bug: the server and job thread go on
        return {"error": protocol.ERROR_INTERNAL,
                "message": f"internal error ({type(error).__name__}: {error}); the server log has the details"}

    def _free_results(self, job: Job) -> None:
        job.arrays.clear()
        if self.results is not None and job.reserved:
            self.results.release(job.reserved)
        job.reserved = 0

    # -- looking up ----------------------------------------------------------------------

    def get(self, job_id: str, owner: Optional[str] = None) -> Job:
        """The job; 404 when unknown, expired, or not ``owner``'s (None: any owner)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            raise DomainError(protocol.ERROR_JOB_NOT_FOUND,
                              "no such job: it finished more than the result lifetime ago, the "
                              "server restarted, or the id is wrong; submit it again")
        return job

    def describe(self, job: Job) -> dict:
        position = None
        if job.state == QUEUED:
            queue = self._queues.get(job.device)
            position = queue.position(job) if queue is not None else None
        with self._lock:
            return job.describe(self._clock(), position)

    def cancel(self, job_id: str, owner: Optional[str] = None, stage: str = "cancelled") -> Job:
        """Ask a job to stop: a queued job is cancelled at once (its ``stage`` becomes
        ``stage``: why), a running one at its next progress report or device step.
        Cancelling a finished job changes nothing. ``owner``: 404 unless it is theirs."""
        job = self.get(job_id, owner)
        with self._lock:
            if job.state in FINISHED:
                return job
            job.cancel_requested.set()
            if job.state == QUEUED:
                job.state, job.stage = CANCELLED, stage
                job.finished = self._clock()
                job.work = None
                self._free_results(job)
                queue = self._queues.get(job.device)
                if queue is not None:
                    queue.discard(job)
        return job

    def array(self, job_id: str, name: str, owner: Optional[str] = None) -> Tuple[np.ndarray, dict]:
        job = self.get(job_id, owner)
        if job.state in (QUEUED, RUNNING):
            raise DomainError(protocol.ERROR_JOB_NOT_DONE,
                              f"the job is {job.state}; its results can be read once it is done")
        if job.state != DONE:  # failed or cancelled: it will never have results
            raise DomainError(protocol.ERROR_JOB_NOT_DONE, f"the job {job.state}; it has no results")
        if job.dropped:
            raise DomainError(protocol.ERROR_NOT_FOUND,
                              "the job's results were downloaded and then dropped to make room for "
                              "other results; run the job again to get them back")
        if name not in job.arrays:
            raise DomainError(protocol.ERROR_NOT_FOUND,
                              f"job has no array {name!r}; it has {', '.join(sorted(job.arrays)) or 'none'}")
        job.downloaded = True
        return job.arrays[name]

    def is_pending(self, job_id: str) -> bool:
        """Whether the job is queued or running (False for finished and unknown jobs)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return job is not None and job.state not in FINISHED

    def images_in_use(self) -> Set[str]:
        """Image ids of queued and running jobs (pinned in the image store)."""
        with self._lock:
            return {image_id for job in self._jobs.values() if job.state not in FINISHED
                    for image_id in job.image_ids}

    def counts(self) -> Dict[str, int]:
        """Jobs per state (metrics)."""
        with self._lock:
            out = {state: 0 for state in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)}
            for job in self._jobs.values():
                out[job.state] += 1
            return out

    def queue_depth(self) -> Dict[str, int]:
        return {device: len(queue) for device, queue in self._queues.items()}

    # -- housekeeping --------------------------------------------------------------------

    def reap(self) -> int:
        with self._lock:
            gone = self._reap_locked()
        if gone:
            return_memory_to_system()
        return gone

    def _reap_locked(self) -> int:
        now = self._clock()
        gone = [job for job in self._jobs.values()
                if job.state in FINISHED and job.finished is not None and now - job.finished > self.ttl_s]
        for job in gone:
            self._free_results(job)
            del self._jobs[job.id]
        return len(gone)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel every job and stop the job threads (server shutdown)."""
        with self._lock:
            jobs = list(self._jobs.values())
            queues = list(self._queues.values())
        for job in jobs:
            if job.state not in FINISHED:
                self.cancel(job.id)
        for pending in queues:
            pending.close()
        for thread in self._threads:
            thread.join(timeout_s)

