"""How the server is laid out on a Ray cluster: ``SLICERFM_RAY_*`` variables or flags.

The server's own settings (:class:`slicerfm_backend.settings.Settings`) apply to every
worker as they are: ``max_sessions``, ``max_jobs``, ``max_jobs_per_user`` and the byte
budgets are *per worker* (per GPU); the images budget also bounds the cluster's image
store. Without ``memory_budget_bytes`` each worker takes its part of its machine's default
budget (the workers on one machine share it). Users, tokens and OpenID Connect are the
server's (``state_dir``); each worker keeps its sessions and images in ``state_dir/worker-N``.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

NAMESPACE = "slicerfm"


class ClusterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLICERFM_RAY_", extra="ignore")

    address: Optional[str] = Field(None, description="Ray cluster to join (host:port, ray://...); none: start one here")
    workers: Optional[int] = Field(None, ge=1,
                                   description="session workers; default one per GPU (one per node without GPUs)")
    worker_gpus: Optional[float] = Field(None, ge=0, description="GPUs a worker holds; default 0.5 with GPUs, else 0")
    worker_cpus: float = Field(1.0, ge=0, description="CPUs a worker holds")
    job_gpus: Optional[float] = Field(None, ge=0, description="GPUs a job task takes; default 0.5 with GPUs, else 0")
    job_cpus: float = Field(1.0, ge=0, description="CPUs a job task takes")
    detached: bool = Field(False, description="workers outlive this process (Ray Serve / RayService)")
    namespace: str = Field(NAMESPACE, description="Ray namespace of the named actors")


def gpus_or_default(given: Optional[float], cluster_gpus: float) -> float:
    """``given``, else half a GPU on a cluster with GPUs (a worker and a job share one), else 0."""
    if given is not None:
        return float(given)
    return 0.5 if cluster_gpus > 0 else 0.0
