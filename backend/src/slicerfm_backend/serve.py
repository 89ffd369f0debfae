"""``slicerfm-backend serve``: run the server (uvicorn) with settings from flags and the
environment; refuses a non-loopback address without an access token."""

from __future__ import annotations

import argparse
import ipaddress
import logging

from slicerfm_client import protocol

from . import __version__
from .settings import add_engine_flags, settings_from_args

log = logging.getLogger("slicerfm_backend")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if not _is_loopback(settings.host) and settings.token is None and not args.insecure_no_token:
        log.error(
            "refusing to listen on %s without an access token: anyone on the network could use "
            "this server. Set SLICERFM_TOKEN (or --token-file FILE), or pass --insecure-no-token "
            "if a proxy in front of it authenticates users.", settings.host)
        return 2
    import uvicorn

    from .app import make_app

    try:
        app = make_app(settings)
    except ValueError as error:
        log.error("%s", error)
        return 2
    state = app.state.slicerfm
    log.info("SlicerFM backend %s (protocol %s) on http://%s:%d, engines: %s, registration engines: %s, "
             "device: %s (%s), token: %s", __version__, protocol.PROTOCOL_VERSION, settings.host, settings.port,
             ", ".join(settings.engines), ", ".join(settings.registration_engines), state.engines.device,
             state.engines.device_choice.reason, "required" if settings.token else "none")
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=5)
    return 0


def add_parsers(subparsers) -> None:
    """Add ``serve`` to the ``slicerfm-backend`` parser."""
    serve = subparsers.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--engines", help="comma-separated engines to serve (default classic)")
    serve.add_argument("--registration-engines", dest="registration_engines",
                       help="comma-separated registration engines to serve (default classic)")
    serve.add_argument("--max-sessions", type=int, dest="max_sessions")
    serve.add_argument("--max-jobs", type=int, dest="max_jobs",
                       help="background jobs (registration, automatic segmentation) waiting or running at once")
    serve.add_argument("--token-file", help="file holding the access token clients must send")
    serve.add_argument("--insecure-no-token", action="store_true",
                       help="allow a non-loopback --host without a token")
    serve.add_argument("--log-level", dest="log_level")
    add_engine_flags(serve)
    serve.set_defaults(func=cmd_serve)
