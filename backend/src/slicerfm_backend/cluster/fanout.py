"""Requests the ingress asks every worker and answers with the sum: an admin's list of
sessions, and ``/metrics``.

Each worker checks the caller's credentials itself (admins only, as on one server): when
any worker refuses, its refusal is the answer. A worker that does not answer (its process
died or is restarting) is left out and named in the answer (``unavailable_workers``) or
counted in the metrics (``slicerfm_cluster_workers_answering``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import List, Optional, Tuple

from .asgi_call import Reply, RequestHead
from .metrics import IngressMetrics, merge
from .pool import WorkerPool

log = logging.getLogger(__name__)


async def ask_all(pool: WorkerPool, head: RequestHead) -> Tuple[List[Tuple[int, Reply]], List[int]]:
    """``head`` (no body) sent to every worker that answered its last load query:
    ``([(index, reply)], [indices that did not answer])``."""
    await pool.refresh()
    workers = [w for w in pool.workers if w.load is not None]

    async def one(worker) -> Optional[Reply]:
        try:
            return await worker.handle.handle.remote(head, b"")
        except Exception as error:  # noqa: BLE001 -- a gone worker is left out
            log.warning("worker %d did not answer %s (%s)", worker.index, head.path, type(error).__name__)
            worker.load = None
            return None

    replies = await asyncio.gather(*(one(w) for w in workers))
    answered = [(w.index, r) for w, r in zip(workers, replies) if r is not None]
    missing = sorted(set(range(len(pool))) - {index for index, _ in answered})
    return answered, missing


def first_refusal(answered: List[Tuple[int, Reply]]) -> Optional[Reply]:
    return next((reply for _, reply in answered if reply.status != 200), None)


async def admin_sessions(pool: WorkerPool, head: RequestHead) -> Optional[Reply]:
    """Every worker's sessions in one list (``worker`` added to each row); None when no
    worker answers."""
    answered, missing = await ask_all(pool, head)
    if not answered:
        return None
    refusal = first_refusal(answered)
    if refusal is not None:
        return refusal
    rows = []
    for index, reply in answered:
        for row in json.loads(reply.body).get("sessions", []):
            rows.append({**row, "worker": index})
    body = json.dumps({"sessions": rows, "unavailable_workers": missing}).encode()
    return Reply(200, [(b"content-type", b"application/json")], body)


async def cluster_metrics(pool: WorkerPool, head: RequestHead, own: IngressMetrics) -> Optional[Reply]:
    """The workers' metrics labelled by worker, then the ingress's; None when no worker answers."""
    answered, _ = await ask_all(pool, head)
    if not answered:
        return None
    refusal = first_refusal(answered)
    if refusal is not None:
        return refusal
    body, content_type = merge([(index, reply.body.decode("utf-8")) for index, reply in answered], own.registry)
    return Reply(200, [(b"content-type", content_type.encode("latin-1"))], body)
