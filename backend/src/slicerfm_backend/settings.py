"""Server settings: command-line flags override ``SLICERFM_*`` environment variables.

Every field can be set as ``SLICERFM_<NAME>`` (e.g. ``SLICERFM_MAX_SESSIONS=4``); the access
token only through ``SLICERFM_TOKEN`` or a token file, never on the command line (where other
users of the machine could read it with ``ps``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Dict, List, Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GIB = 1 << 30


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLICERFM_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to bind; loopback unless told otherwise")
    port: int = Field(8765, ge=0, le=65535)
    device: str = Field("auto", description="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps")
    # NoDecode: SLICERFM_ENGINES is "a,b", not JSON.
    engines: Annotated[List[str], NoDecode] = Field(default_factory=lambda: ["classic"],
                                                   description="engines to serve, comma-separated")
    registration_engines: Annotated[List[str], NoDecode] = Field(
        default_factory=lambda: ["classic"], description="registration engines to serve, comma-separated")
    token: Optional[SecretStr] = Field(None, description="the shared access token (simple mode); never empty")
    state_dir: Optional[Path] = Field(
        None, description="users, sessions (segments, undo history) and uploaded images, kept across "
                          "restarts; unset: in memory only")
    share_images: bool = Field(False, description="let every user attach every uploaded image (default: "
                                                  "an image is visible only to the users who uploaded it)")
    max_jobs_per_user: int = Field(4, ge=1, description="background jobs one user may have waiting or running")
    oidc_issuer: Optional[str] = Field(None, description="accept JWTs of this OpenID Connect issuer")
    oidc_audience: Optional[str] = Field(None, description="the audience the JWTs must name (this server)")
    oidc_jwks: Optional[str] = Field(None, description="the issuer's signing keys: a JWKS file or https URL")
    oidc_user_claim: str = Field("preferred_username", description="JWT claim holding the user name")
    oidc_roles_claim: str = Field("roles", description="JWT claim holding the user's roles (a list)")
    oidc_admin_role: str = Field("slicerfm-admin", description="the role that makes a JWT user an admin")
    tls_cert: Optional[Path] = Field(None, description="TLS certificate chain (PEM); with tls_key: serve HTTPS")
    tls_key: Optional[Path] = Field(None, description="TLS private key (PEM)")
    log_format: str = Field("text", pattern="^(text|json)$", description="server log lines: text or json")
    drain_timeout_s: float = Field(30.0, gt=0, description="on SIGTERM, how long running requests may finish")
    max_sessions: int = Field(16, ge=1)
    heartbeat_interval_s: float = Field(15.0, gt=0, description="how often clients should beat")
    liveness_timeout_s: float = Field(60.0, gt=0, description="session ends without any request for this long")
    idle_timeout_s: float = Field(3600.0, gt=0, description="session ends without work (not heartbeats) for this long")
    max_upload_bytes: int = Field(4 * GIB, gt=0, description="largest upload body on the wire")
    max_voxels: int = Field(1024 * 1024 * 1024, gt=0, description="largest image in voxels")
    max_dimension: int = Field(4096, gt=0, description="largest size of one image axis")
    memory_budget_bytes: Optional[int] = Field(
        None, gt=0, description="memory for images, sessions and job results together; default "
                                "60% of this machine's (or its container's) memory")
    image_cache_bytes: Optional[int] = Field(
        None, gt=0, description="memory for stored images and uploads in progress; default half the memory budget")
    session_bytes: Optional[int] = Field(
        None, gt=0, description="memory for all sessions' segments and undo history (each session gets "
                                "its max_sessions-th part); default 30% of the memory budget")
    job_result_bytes: Optional[int] = Field(
        None, gt=0, description="memory for finished jobs' result arrays; default 20% of the memory budget")
    max_undo: int = Field(50, ge=1, description="undo steps kept per segment")
    max_segments: int = Field(256, ge=1, description="segments per session")
    max_jobs: int = Field(16, ge=1, description="background jobs waiting or running at once")
    job_ttl_s: float = Field(1800.0, gt=0, description="how long a finished job's results are kept")
    weights_dir: Path = Field(Path("~/.cache/slicerfm/weights"),
                              description="model weights store: <dir>/<engine>/<revision>/<file>")
    # NoDecode: SLICERFM_CHECKPOINTS is "engine=/path,engine2=/path2", not JSON.
    checkpoints: Annotated[Dict[str, str], NoDecode] = Field(
        default_factory=dict, description="checkpoint files that replace the store, engine=path")
    # NoDecode: SLICERFM_ENGINE_OPTIONS is "engine.key=value,...", not JSON.
    engine_options: Annotated[Dict[str, Dict[str, str]], NoDecode] = Field(
        default_factory=dict, description="engine options, engine.key=value (see engine_core/options.py)")
    log_level: str = "info"

    @field_validator("engines", "registration_engines", mode="before")
    @classmethod
    def _split_engines(cls, value):
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("token", mode="after")
    @classmethod
    def _refuse_empty_token(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        # An empty token must not mean "no authentication" (issue 14, finding 1): refuse it.
        if value is not None:
            text = value.get_secret_value().strip()
            if not text:
                raise ValueError("the access token (SLICERFM_TOKEN or --token-file) is empty: write a "
                                 "token into it (e.g. openssl rand -hex 24) or unset it")
            value = SecretStr(text)
        return value

    @field_validator("state_dir", "tls_cert", "tls_key", mode="after")
    @classmethod
    def _expand_paths(cls, value: Optional[Path]) -> Optional[Path]:
        return None if value is None else value.expanduser()

    @field_validator("weights_dir", mode="after")
    @classmethod
    def _expand_weights_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("checkpoints", mode="before")
    @classmethod
    def _split_checkpoints(cls, value):
        if isinstance(value, str):
            from .weights.resolve import parse_checkpoints

            return parse_checkpoints(value)
        return value

    @field_validator("engine_options", mode="before")
    @classmethod
    def _split_engine_options(cls, value):
        if isinstance(value, str):
            from .engine_core.options import parse_option_specs

            return parse_option_specs([value])
        return value

    def token_value(self) -> Optional[str]:
        """The shared access token, or None in the modes without one (never an empty string)."""
        return self.token.get_secret_value() if self.token is not None else None

    def budgets(self) -> Dict[str, int]:
        """Byte budgets ``{"images", "sessions", "job_results"}``: each set one wins, the others
        are their share of ``memory_budget_bytes`` (default 60% of this machine's memory)."""
        from .memory import machine_memory_bytes

        total = self.memory_budget_bytes or int(machine_memory_bytes() * DEFAULT_MEMORY_SHARE)
        return {"images": self.image_cache_bytes or total // 2,
                "sessions": self.session_bytes or int(total * 0.3),
                "job_results": self.job_result_bytes or total // 5}


#: The part of the machine's memory a server's budgets take when none is set.
DEFAULT_MEMORY_SHARE = 0.6

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (default auto: CUDA, then Apple MPS, then the CPU)"


def add_engine_flags(parser: argparse.ArgumentParser, device: bool = True) -> None:
    """The flags every command that builds engines takes: ``--device``, ``--checkpoint
    ENGINE=PATH`` and ``--engine-option ENGINE.KEY=VALUE`` (both repeatable)."""
    if device:
        parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--checkpoint", action="append", metavar="ENGINE=PATH",
                        help="load this checkpoint file instead of the weights store (repeatable)")
    parser.add_argument("--engine-option", action="append", dest="engine_option", metavar="ENGINE.KEY=VALUE",
                        help="engine setting, e.g. sam-med3d.max_crops=4 or classic.unfold=off "
                             "(repeatable; `engines` lists each engine's options)")


def modality_argument(text: str) -> str:
    """``type=`` of a modality flag: CT, MR or other in any case, with the usual synonyms
    (:func:`slicerfm_client.protocol.modality`)."""
    from slicerfm_client import protocol

    try:
        return protocol.modality(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment and the flags; exits with the reason when they are wrong."""
    try:
        return _build_settings(args)
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        raise SystemExit(f"error: {error}") from None


def _build_settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for field in ("host", "port", "device", "engines", "registration_engines", "max_sessions", "max_jobs",
                  "log_level", "log_format", "state_dir", "tls_cert", "tls_key"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    token_file = getattr(args, "token_file", None)
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            overrides["token"] = handle.read()  # an empty file is refused by the settings
    settings = Settings(**overrides)  # keyword arguments win over SLICERFM_* variables
    for spec in getattr(args, "checkpoint", None) or []:
        from .weights.resolve import parse_checkpoints

        settings.checkpoints.update(parse_checkpoints(spec))
    if getattr(args, "engine_option", None):
        from .engine_core.options import parse_option_specs

        for engine, given in parse_option_specs(args.engine_option).items():
            settings.engine_options.setdefault(engine, {}).update(given)
    return settings
