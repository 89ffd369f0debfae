"""``slicerfm-backend serve --ray [ADDRESS]``: join (or start) a Ray cluster, start the
workers, and serve the ingress here with uvicorn.

Ray is optional (``pip install 'slicerfm-backend[ray]'``) and imported only here and in
the cluster's actors. Without an address a one-machine Ray instance is started in this
process: loopback only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps every Ray service
on 127.0.0.1, as on a laptop), no dashboard, no usage statistics. An address on loopback
(a cluster started on this machine with ``ray start --head --node-ip-address=127.0.0.1``)
is joined the same way.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from typing import Optional

from .settings import ClusterSettings

log = logging.getLogger("slicerfm_backend")

LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
SHUTDOWN_TIMEOUT_S = 20.0


def is_loopback_address(address: Optional[str]) -> bool:
    """Whether a Ray address (``host:port``) is on this machine's loopback."""
    if not address:
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def import_ray():
    """``ray``, or SystemExit with the install command."""
    try:
        import ray
    except ImportError:
        raise SystemExit("error: serving on Ray needs Ray: pip install 'slicerfm-backend[ray]'") from None
    return ray


def connect(cluster: ClusterSettings) -> None:
    """``ray.init`` for ``cluster.address`` (None: a new one-machine instance, loopback only)."""
    if is_loopback_address(cluster.address):
        os.environ.setdefault(LOOPBACK_ONLY, "0")  # read when ray is imported
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = import_ray()
    if ray.is_initialized():
        return
    if cluster.address:
        ray.init(address=cluster.address, namespace=cluster.namespace)
    else:
        ray.init(namespace=cluster.namespace, include_dashboard=False)


def cluster_settings_from_args(args: argparse.Namespace) -> ClusterSettings:
    overrides = {}
    if getattr(args, "ray", None):
        overrides["address"] = args.ray
    for field in ("workers", "worker_gpus", "job_gpus"):
        value = getattr(args, f"ray_{field}", None)
        if value is not None:
            overrides[field] = value
    try:
        return ClusterSettings(**overrides)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def serve_on_ray(settings, args: argparse.Namespace) -> int:
    """Run the ingress on ``settings.host:port`` until stopped; the workers stop with it
    unless ``SLICERFM_RAY_DETACHED`` is set."""
    import uvicorn

    from .ingress import Ingress
    from .pool import WorkerPool, start_actors

    cluster = cluster_settings_from_args(args)
    connect(cluster)
    ray = import_ray()
    directory, workers = start_actors(settings, cluster)
    try:
        loads = ray.get([worker.ready.remote() for worker in workers], timeout=600)
    except Exception as error:  # noqa: BLE001 -- e.g. an engine that cannot start
        log.error("the cluster's workers did not start: %s", error)
        return 2
    scheme = "https" if settings.tls_cert else "http"
    log.info("SlicerFM backend on Ray (%s): ingress on %s://%s:%d, %d workers (%s), engines: %s, credentials: "
             "%s, state: %s", cluster.address or "a Ray instance started here", scheme, settings.host, settings.port,
             len(workers), ", ".join(f"{load['device']} pid {load['pid']}" for load in loads),
             ", ".join(settings.engines), credentials(settings), settings.state_dir or "in memory")
    from ..drain import DrainingServer

    ingress = Ingress(WorkerPool(workers), keeps_sessions=settings.state_dir is not None)
    # No access log: paths hold session, image and job ids. HTTPS as the single server does.
    config = uvicorn.Config(ingress, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            log_level=settings.log_level.lower(), timeout_graceful_shutdown=5,
                            ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key)
    try:
        # SIGTERM drains the ingress; the workers then flush their sessions as they stop.
        DrainingServer(config, ingress.drain, settings.drain_timeout_s).run()
    finally:
        if not cluster.detached:
            stop_actors(workers, directory)
    return 0


def credentials(settings) -> str:
    """The kinds of credentials the workers take (as ``serve`` logs them)."""
    from ..auth.authenticator import Authenticator

    return ", ".join(Authenticator.from_settings(settings).modes()) or "none"


def stop_actors(workers, directory) -> None:
    """Let each worker end its jobs and sessions, then end the actors."""
    ray = import_ray()
    try:
        ray.get([worker.shutdown.remote() for worker in workers], timeout=SHUTDOWN_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 -- a dead worker has nothing to stop
        log.warning("stopping the workers: %s", error)
    for actor in [*workers, directory]:
        ray.kill(actor)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """``serve``'s cluster flags."""
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="serve on a Ray cluster: join ADDRESS (host:port or ray://host:port), or without "
                             "one start a one-machine Ray instance here (docs/SCALE.md)")
    parser.add_argument("--ray-workers", type=int, dest="ray_workers",
                        help="session workers on the cluster (default one per GPU, or one per node)")
    parser.add_argument("--ray-worker-gpus", type=float, dest="ray_worker_gpus",
                        help="GPUs each worker holds (default 0.5 where there are GPUs: a worker and a job share one)")
    parser.add_argument("--ray-job-gpus", type=float, dest="ray_job_gpus",
                        help="GPUs each registration or automatic-segmentation job takes (default 0.5 with GPUs)")
