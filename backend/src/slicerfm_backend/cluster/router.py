"""The ingress's one decision: which worker answers a request; and what to say when it is gone.

* a job's requests (``/api/jobs/<id>...``) go to the worker named in the job id;
* a request with a session lease goes to the worker named in the session id;
* a new session goes to the worker with the fewest sessions (then the next, when full);
* a job submitted with credentials goes to a worker chosen by the access token, so one
  user's jobs meet one job queue (its order and per-user limits) from any of their
  sessions; without credentials to the session's worker, or the least-loaded one;
* an admin's end of a session goes to the worker named in the session id; the list of
  sessions and ``/metrics`` are asked of every worker and merged (:mod:`.fanout`);
* anything else (info, engines, image upload) goes to the least-loaded worker.

Everything else -- access, limits, validation, the answer -- is the worker's own server.
When a worker's process has died, its jobs are reported failed with the reason, the other
workers go on serving, and its session's next request answers either 410 (the client
claims a new session and re-seeds) or, where each worker keeps its sessions in a state
directory (``keeps_sessions``), 503 ``restarting`` while Ray restarts the worker: the
client sends the request again and the restarted worker answers it with the session it
read back (410 only once the worker has been away longer than ``RESTART_GRACE_S``).

A request is sent again only when it cannot have been applied. While a worker is known to
be gone, its sessions' requests are not sent at all (one ``load`` call tells whether it is
back): 503 ``restarting``, safe to send again. A request that *was* sent and whose worker
died before answering may have been applied and journaled (Ray cannot tell: its calls are
at most once, and their failure says nothing about whether they ran), so only a reading
one (GET, HEAD) answers 503; any other answers 410 and its session is ended on the
restarted worker (:meth:`WorkerState.abandon`): the client re-seeds a new session from its
own copy, and no click is applied twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from typing import List, Optional, Protocol, Tuple

from slicerfm_client import protocol

from ..http_errors import STATUS
from . import fanout
from .asgi_call import Reply, RequestHead
from .metrics import IngressMetrics
from .pool import WorkerPool, WorkerState

log = logging.getLogger(__name__)

STREAM_THRESHOLD = 4 << 20  # a body larger than this streams to the worker in pieces
PIECE_BYTES = 4 << 20
SESSION_ID = re.compile(r"^w(\d+)-")
JOB_ID = re.compile(r"^w(\d+)x([0-9a-f]{4})-")
SESSION_HEADER = protocol.HEADER_SESSION.lower().encode("latin-1")
JOB_PATH = protocol.PATH_JOBS + "/"
ADMIN_SESSION_PATH = protocol.PATH_ADMIN_SESSIONS + "/"
RETRY_S = 5
RESTART_GRACE_S = 90.0  # how long a worker that keeps its sessions may be away before they count as lost
RESTART_RETRY_S = 2


class ClientGone(Exception):
    """The HTTP client disconnected before its request body arrived."""


class Body(Protocol):
    async def read(self, at_least: int) -> Tuple[bytes, bool]:
        """At least ``at_least`` more bytes (fewer at the end) and whether more follow."""


def error_reply(code: str, message: str, retry_after_s: Optional[int] = None) -> Reply:
    headers = [(b"content-type", b"application/json")]
    if retry_after_s is not None:
        headers.append((protocol.HEADER_RETRY_AFTER.lower().encode(), str(retry_after_s).encode()))
    return Reply(STATUS[code], headers, json.dumps({"error": code, "message": message}).encode())


def worker_restarting() -> Reply:
    return error_reply(protocol.ERROR_RESTARTING,
                       "the cluster worker that holds your session is restarting; the session, its segments "
                       "and their undo history come back with it. Try again in a few seconds (the client "
                       "does so by itself)", retry_after_s=RESTART_RETRY_S)


def worker_gone_for_session() -> Reply:
    return error_reply(protocol.ERROR_SESSION_EXPIRED,
                       "the cluster worker that held this session stopped (its process ended or was "
                       "restarted); claim a new session, upload the image again and re-send your segments")


def worker_gone_mid_request() -> Reply:
    return error_reply(protocol.ERROR_SESSION_EXPIRED,
                       "the cluster worker that held this session stopped while it ran this request, so "
                       "whether it was applied is unknown; the session was ended so that nothing is applied "
                       "twice: claim a new session and re-send your segments")


def replay_safe(head: RequestHead) -> bool:
    """Whether a request changes nothing, so that sending it again is harmless."""
    return head.method in ("GET", "HEAD")


def failed_job_status(job_id: str, reason: str) -> Reply:
    """A job whose worker is gone, in the shape of ``GET /api/jobs/{id}`` (docs/PROTOCOL.md)."""
    status = {"job_id": job_id, "kind": None, "state": "failed", "stage": "failed", "done": 0, "total": 0,
              "progress": None, "queue_position": None, "elapsed_s": 0.0, "estimate_s": None,
              "error": {"error": protocol.ERROR_JOB_FAILED, "message": reason}, "result": None, "arrays": []}
    return Reply(200, [(b"content-type", b"application/json")], json.dumps(status).encode())


def is_worker_gone(error: BaseException) -> bool:
    """A Ray error that means the worker's process is dead or restarting."""
    from ray import exceptions

    return isinstance(error, (exceptions.RayActorError, exceptions.ActorUnavailableError))


class Router:
    """``keeps_sessions``: the workers keep their sessions in state directories (a
    restarted worker reads them back)."""

    def __init__(self, pool: WorkerPool, keeps_sessions: bool = False):
        self.pool = pool
        self.keeps_sessions = keeps_sessions
        self.metrics = IngressMetrics(pool)

    async def forward(self, head: RequestHead, body: Body) -> Reply:
        started = time.perf_counter()
        kind = route_kind(head)
        if kind == "job":
            reply = await self._job(head, body)
        elif kind == "admin-session":
            reply = await self._by_session_id(head, body, head.path[len(ADMIN_SESSION_PATH):])
        elif kind == "admin-sessions":
            reply = await fanout.admin_sessions(self.pool, head) or no_worker_reply()
        elif kind == "metrics":
            reply = await fanout.cluster_metrics(self.pool, head, self.metrics) or no_worker_reply()
        elif kind == "session":
            reply = await self._session(head, body)
        elif kind == "claim":
            reply = await self._claim(head, body)
        elif kind == "submit":
            reply = await self._any(head, body, preferred=self._by_token(head))
        else:
            reply = await self._any(head, body)
        seconds = time.perf_counter() - started
        self.metrics.observe(head.method, kind, reply.status, seconds)
        return with_cluster_timing(reply, seconds * 1000.0)

    # -- routes ----------------------------------------------------------------------------

    async def _session(self, head: RequestHead, body: Body) -> Reply:
        lease = head.header(SESSION_HEADER) or ""
        match = SESSION_ID.match(lease)
        worker = self.pool.get(int(match.group(1))) if match else None
        if worker is None:  # names no worker: any worker answers (401 first, else 410), as one server would
            return await self._any(head, body)
        if worker.down_since is not None and not await self.pool.is_back(worker):
            return self._while_gone(worker)  # not sent: the client may send it again
        try:
            reply = await send(worker, head, body)
            worker.down_since = None  # it answers (again)
            return reply
        except Exception as error:
            if not is_worker_gone(error):
                raise
            self.metrics.worker_gone.inc()
            worker.mark_down(time.monotonic())
            if self.keeps_sessions and not replay_safe(head):
                # It may have been applied and journaled before the process died: never
                # send it twice. The session ends; the client re-seeds a new one.
                log.warning("worker %d died during a request of a session; the session answers 410", worker.index)
                worker.abandon(lease)
                return worker_gone_mid_request()
            return self._while_gone(worker)

    def _while_gone(self, worker: WorkerState) -> Reply:
        """A session's request not sent to its gone worker: 503 while it restarts (with a
        state directory, within the grace period), else 410."""
        if self.keeps_sessions and worker.mark_down(time.monotonic()) < RESTART_GRACE_S:
            log.warning("worker %d is gone; its session waits for it to restart", worker.index)
            return worker_restarting()
        log.warning("worker %d is gone; its session answers 410", worker.index)
        return worker_gone_for_session()

    async def _by_session_id(self, head: RequestHead, body: Body, session_id: str) -> Reply:
        """A request naming a session in its path (an admin ending it): its worker answers."""
        match = SESSION_ID.match(session_id)
        worker = self.pool.get(int(match.group(1))) if match else None
        if worker is None:
            return await self._any(head, body)  # the worker says what is wrong (403, 404)
        try:
            return await send(worker, head, body)
        except Exception as error:
            if is_worker_gone(error):  # another worker answers: 401/403 to non-admins, 404 to an admin
                return await self._any(head, body)
            raise

    async def _job(self, head: RequestHead, body: Body) -> Reply:
        job_id = head.path[len(JOB_PATH):].split("/", 1)[0]
        match = JOB_ID.match(job_id)
        worker = self.pool.get(int(match.group(1))) if match else None
        if worker is None:  # names no worker: any worker answers (401 first, else 404), as one server would
            return await self._any(head, body)
        gone = ("the cluster worker that held this job stopped (its process ended or was restarted), "
                "so its progress and results are lost; submit the job again")
        try:
            reply = await send(worker, head, body)
        except Exception as error:
            if not is_worker_gone(error):
                raise
            self.metrics.worker_gone.inc()
            return failed_job_status(job_id, gone) if head.method != "GET" or "/arrays/" not in head.path \
                else error_reply(protocol.ERROR_JOB_NOT_FOUND, gone)
        if reply.status == 404 and b"job_not_found" in reply.body:
            await self.pool.refresh(force=True)
            load = worker.load or {}
            if load.get("incarnation") not in (None, match.group(2)) and "/arrays/" not in head.path:
                return failed_job_status(job_id, gone)
        return reply

    async def _claim(self, head: RequestHead, body: Body) -> Reply:
        whole, more = await body.read(STREAM_THRESHOLD)
        if more:
            return error_reply(protocol.ERROR_TOO_LARGE, "a session claim is a small JSON object")
        await self.pool.refresh()
        tried: List[int] = []
        last: Optional[Reply] = None
        while True:
            # Chosen and counted before the call: claims arriving together spread out.
            candidates = self.pool.by_load(exclude=tried)
            if not candidates:
                break
            worker = candidates[0]
            tried.append(worker.index)
            worker.placing += 1
            try:
                reply = await worker.handle.handle.remote(head, whole)
            except Exception as error:
                if is_worker_gone(error):
                    worker.load = None
                    continue
                raise
            finally:
                worker.placing -= 1
            if reply.status == 200:
                worker.placed += 1
            if is_full(reply):  # another worker may have room; any other refusal is the answer
                last = reply
                continue
            return reply
        if last is not None:
            return error_reply(protocol.ERROR_SERVER_FULL,
                               f"all {len(tried)} workers of this cluster serve their maximum of sessions; "
                               f"try again in {RETRY_S * 6} s or ask the administrator for more workers",
                               retry_after_s=RETRY_S * 6)
        return no_worker_reply()

    async def _any(self, head: RequestHead, body: Body, preferred: Optional[int] = None) -> Reply:
        await self.pool.refresh()
        order = self.pool.by_load()
        if preferred is not None:
            order.sort(key=lambda w: (w.index - preferred) % len(self.pool))
        whole, more = await body.read(STREAM_THRESHOLD)
        for worker in order:
            try:
                if more:  # a stream cannot be sent twice: this worker answers, or nobody
                    return await send(worker, head, body, first=(whole, more))
                return await worker.handle.handle.remote(head, whole)
            except Exception as error:
                if not is_worker_gone(error):
                    raise
                worker.load = None
                if more:
                    break
        return no_worker_reply()

    def _by_token(self, head: RequestHead) -> Optional[int]:
        """The worker whose job queue takes this caller's jobs (None without credentials:
        everyone is the same local user, so the least-loaded worker)."""
        token = (head.header(b"authorization") or "").encode()
        if not token:
            return None
        return int.from_bytes(hashlib.sha256(token).digest()[:4], "big") % max(1, len(self.pool))


def is_full(reply: Reply) -> bool:
    """Whether a worker refused a new session for having its maximum (not, e.g., for a full
    state directory, which another worker's answer would only hide)."""
    if reply.status != STATUS[protocol.ERROR_SERVER_FULL]:
        return False
    try:
        return json.loads(reply.body).get("error") == protocol.ERROR_SERVER_FULL
    except (ValueError, AttributeError):
        return False


def route_kind(head: RequestHead) -> str:
    """How a request is routed (also its ``route`` label in the ingress's metrics)."""
    if head.path.startswith(JOB_PATH):
        return "job"
    if head.path.startswith(ADMIN_SESSION_PATH):
        return "admin-session"
    if head.method == "GET" and head.path == protocol.PATH_ADMIN_SESSIONS:
        return "admin-sessions"
    if head.method == "GET" and head.path == protocol.PATH_METRICS:
        return "metrics"
    submit = head.method == "POST" and head.path in (protocol.PATH_REGISTER, protocol.PATH_SEGMENT_AUTO)
    if submit and head.header(b"authorization"):
        return "submit"  # by the user's token, whatever session sent it: one queue per user
    if head.header(SESSION_HEADER):
        return "session"
    if head.method == "POST" and head.path == protocol.PATH_SESSIONS:
        return "claim"
    return "submit" if submit else "other"


def no_worker_reply() -> Reply:
    return error_reply(protocol.ERROR_SERVER_FULL,
                       f"no worker of this cluster answers right now (starting or restarting); try again "
                       f"in {RETRY_S} s", retry_after_s=RETRY_S)


async def send(worker: WorkerState, head: RequestHead, body: Body,
               first: Optional[Tuple[bytes, bool]] = None) -> Reply:
    """Forward one request to ``worker``: in one call when the body is small, else streamed
    in pieces (the worker decodes while the rest arrives)."""
    data, more = first if first is not None else await body.read(STREAM_THRESHOLD)
    handle = worker.handle
    if not more:
        return await handle.handle.remote(head, data)
    stream_id = secrets.token_hex(8)
    await handle.open.remote(stream_id, head)
    try:
        wanted = await handle.push.remote(stream_id, data, True)
        while more and wanted:
            data, more = await body.read(PIECE_BYTES)
            wanted = await handle.push.remote(stream_id, data, more)
    except ClientGone:
        await handle.abort.remote(stream_id)
        raise
    return await handle.finish.remote(stream_id)


def with_cluster_timing(reply: Reply, ms: float) -> Reply:
    """Add the ingress's own time (``cluster``, ms) to the answer's Server-Timing."""
    headers: List[Tuple[bytes, bytes]] = []
    timing = f"cluster;dur={ms:.3f}".encode()
    found = False
    for key, value in reply.headers:
        if key.lower() == b"server-timing":
            value, found = value + b", " + timing, True
        headers.append((key, value))
    if not found:
        headers.append((b"server-timing", timing))
    return Reply(reply.status, headers, reply.body)
