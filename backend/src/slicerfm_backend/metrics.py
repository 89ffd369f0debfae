"""Prometheus metrics (``GET /metrics``, admins only), with prometheus-client.

Each server has its own registry. Histograms: request latency by method, route template
and status; engine time by engine and stage; device wait by device and priority. Gauges,
read when scraped: sessions, jobs by state, job queue and device queue depths, the memory
budgets (used and limit), process memory, and GPU memory where torch uses CUDA. Labels
never carry ids, names of users' segments or anything a user sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from .device_memory import gpu_memory

if TYPE_CHECKING:
    from .state import ServerState

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)


class _StateCollector:
    """Gauges read from the server's state at scrape time."""

    def __init__(self, state: "ServerState"):
        self.state = state

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = self.state
        yield GaugeMetricFamily("slicerfm_sessions", "open sessions", value=len(state.sessions))
        jobs = GaugeMetricFamily("slicerfm_jobs", "background jobs by state", labels=["state"])
        for name, count in state.jobs.counts().items():
            jobs.add_metric([name], count)
        yield jobs
        job_queue = GaugeMetricFamily("slicerfm_job_queue_depth", "jobs waiting per device", labels=["device"])
        for device, depth in state.jobs.queue_depth().items():
            job_queue.add_metric([device], depth)
        yield job_queue
        depth = GaugeMetricFamily("slicerfm_device_queue_depth", "requests waiting for a device",
                                  labels=["device", "priority"])
        busy = GaugeMetricFamily("slicerfm_device_busy", "device slots in use", labels=["device"])
        for scheduler in state.devices.all():
            for priority, count in scheduler.depth().items():
                depth.add_metric([scheduler.device, priority], count)
            busy.add_metric([scheduler.device], scheduler.busy())
        yield depth
        yield busy
        used = GaugeMetricFamily("slicerfm_memory_used_bytes", "bytes held per memory budget", labels=["budget"])
        limit = GaugeMetricFamily("slicerfm_memory_limit_bytes", "limit of each memory budget", labels=["budget"])
        for name, figures in state.budget_figures().items():
            used.add_metric([name], figures["used_bytes"])
            limit.add_metric([name], figures["limit_bytes"])
        yield used
        yield limit
        gpu = GaugeMetricFamily("slicerfm_gpu_memory_bytes", "GPU memory by device and kind",
                                labels=["device", "kind"])
        for row in gpu_memory():
            for kind in ("allocated", "reserved", "total"):
                gpu.add_metric([row["device"], kind], row[kind])
        yield gpu


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.requests = Histogram("slicerfm_request_seconds", "request latency (server side)",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS,
                                  registry=self.registry)
        self.engine = Histogram("slicerfm_engine_stage_seconds", "engine time per stage",
                                ["engine", "stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.wait = Histogram("slicerfm_device_wait_seconds", "time waiting for a device",
                              ["device", "priority"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.state_errors = Counter("slicerfm_state_write_errors", "failed writes to the state directory",
                                    registry=self.registry)
        self.refused = Counter("slicerfm_auth_refusals", "requests refused for missing or wrong credentials",
                               registry=self.registry)
        self._collector: Optional[_StateCollector] = None

    def attach(self, state: "ServerState") -> None:
        self._collector = _StateCollector(state)
        self.registry.register(self._collector)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)

    def observe_engine(self, engine: str, timings_ms: Dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if stage == "engine" or stage.startswith("engine."):
                self.engine.labels(engine, stage.partition(".")[2] or "total").observe(ms / 1000.0)

    def observe_wait(self, device: str, priority: str, seconds: float) -> None:
        self.wait.labels(device, priority).observe(seconds)

    def render(self) -> tuple:
        """``(body, content type)`` of the Prometheus text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
