"""The cluster's ``/metrics``: every worker's own metrics, labelled by worker, and the ingress's.

Each worker is a whole single-process server with its own Prometheus registry (request
latency by route, engine stages, device waits, sessions, jobs, memory budgets, GPU
memory: :mod:`slicerfm_backend.metrics`). The ingress asks every answering worker for its
``/metrics`` with the scraper's own credentials (each worker checks them: admins only),
adds a ``worker`` label to every sample and merges the families, so one scrape of the
cluster's URL sees all of it. :class:`IngressMetrics` adds what only the ingress sees:
the time a request spends in the ingress and its worker together, by kind of route, and
how many workers answer. Labels never carry ids.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from ..metrics import LATENCY_BUCKETS


class _Pool:
    """Gauges of the pool, read when scraped."""

    def __init__(self, pool):
        self.pool = pool

    def collect(self) -> Iterable[GaugeMetricFamily]:
        workers = self.pool.workers
        yield GaugeMetricFamily("slicerfm_cluster_workers", "session workers of the cluster", value=len(workers))
        yield GaugeMetricFamily("slicerfm_cluster_workers_answering",
                                "workers that answered the ingress's last load query",
                                value=sum(1 for w in workers if w.load is not None))


class IngressMetrics:
    """The ingress's own registry: ``requests`` by method, route kind and status."""

    def __init__(self, pool):
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Histogram("slicerfm_ingress_request_seconds",
                                  "time in the ingress and the worker that answered, by kind of route",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.worker_gone = Counter("slicerfm_ingress_worker_gone",
                                   "requests that found their worker's process gone (410 or failed job)",
                                   registry=self.registry)
        self.registry.register(_Pool(pool))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)


class _Merged:
    """A collector yielding already merged families."""

    def __init__(self, families: List[Metric]):
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)


def merge(worker_texts: List[Tuple[int, str]], own: Optional[CollectorRegistry] = None) -> Tuple[bytes, str]:
    """One Prometheus text exposition from ``[(worker index, its /metrics text)]`` (each
    sample gains ``worker="<index>"``) and the ingress's ``own`` registry; ``(body, content type)``."""
    families: Dict[str, Metric] = {}
    for index, text in worker_texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type,
                                                        family.unit)
            for sample in family.samples:
                merged.samples.append(sample._replace(labels={**sample.labels, "worker": str(index)}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(families.values())))
    body = generate_latest(registry)
    if own is not None:
        body += generate_latest(own)
    return body, CONTENT_TYPE_LATEST
