"""``slicerfm-backend serve``: run the server (uvicorn) with settings from flags and the
environment.

Refuses a non-loopback address without credentials (a token, users or OpenID Connect),
serves HTTPS with ``--tls-cert``/``--tls-key`` (and warns when a non-loopback address
speaks plain HTTP), and drains on SIGTERM (see :mod:`.drain`).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import ssl

from slicerfm_client import protocol

from . import __version__
from .settings import Settings, add_engine_flags, settings_from_args

log = logging.getLogger("slicerfm_backend")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tls(settings: Settings) -> None:
    """ValueError unless the TLS certificate and key are both given (or neither) and load."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("HTTPS needs both --tls-cert and --tls-key (SLICERFM_TLS_CERT, SLICERFM_TLS_KEY)")
    if settings.tls_cert is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(settings.tls_cert, settings.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"the TLS certificate or key cannot be used: {error}") from None


def warn_exposure(settings: Settings, loopback: bool) -> None:
    """Warn about plain HTTP, and about no state directory, on a non-loopback address."""
    if not loopback and not settings.tls_cert:
        log.warning("serving plain HTTP on %s: access tokens and images cross the network unencrypted. "
                    "Use --tls-cert/--tls-key, or a TLS reverse proxy in front of this server.", settings.host)
    if not loopback and settings.state_dir is None:
        log.warning("no state directory (SLICERFM_STATE_DIR): sessions will not survive a restart")


def cmd_serve(args: argparse.Namespace) -> int:
    from . import log_setup

    settings = settings_from_args(args)
    log_setup.configure(settings.log_level, settings.log_format)
    loopback = _is_loopback(settings.host)
    try:
        check_tls(settings)
        from .auth.authenticator import Authenticator

        if not loopback and not Authenticator.from_settings(settings).required and not args.insecure_no_token:
            log.error(
                "refusing to listen on %s without credentials: anyone on the network could use this "
                "server. Set SLICERFM_TOKEN (or --token-file FILE), add users (slicerfm-backend users "
                "add), configure OpenID Connect, or pass --insecure-no-token if a proxy in front of it "
                "authenticates users.", settings.host)
            return 2
        if getattr(args, "ray", None) is not None:
            from .cluster.launch import serve_on_ray

            warn_exposure(settings, loopback)
            return serve_on_ray(settings, args)
        from .app import make_app

        app = make_app(settings)
    except ValueError as error:
        log.error("%s", error)
        return 2
    state = app.state.slicerfm
    scheme = "https" if settings.tls_cert else "http"
    warn_exposure(settings, loopback)
    log.info("SlicerFM backend %s (protocol %s) on %s://%s:%d, engines: %s, registration engines: %s, "
             "device: %s (%s), credentials: %s, state: %s", __version__, protocol.PROTOCOL_VERSION, scheme,
             settings.host, settings.port, ", ".join(settings.engines), ", ".join(settings.registration_engines),
             state.engines.device, state.engines.device_choice.reason, ", ".join(state.auth.modes()) or "none",
             settings.state_dir or "in memory")
    import uvicorn

    from .drain import DrainingServer

    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            log_level=settings.log_level.lower(), timeout_graceful_shutdown=5,
                            ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key)
    DrainingServer(config, state.drain, settings.drain_timeout_s, flush=state.sessions.flush).run()
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
    serve.add_argument("--token-file", help="file holding the shared access token clients must send")
    serve.add_argument("--state-dir", dest="state_dir",
                       help="keep users, sessions and uploaded images here, across restarts (SLICERFM_STATE_DIR)")
    serve.add_argument("--tls-cert", dest="tls_cert", help="serve HTTPS with this certificate chain (PEM)")
    serve.add_argument("--tls-key", dest="tls_key", help="the certificate's private key (PEM)")
    serve.add_argument("--insecure-no-token", action="store_true",
                       help="allow a non-loopback --host without credentials (a proxy authenticates)")
    serve.add_argument("--log-level", dest="log_level")
    serve.add_argument("--log-format", dest="log_format", choices=["text", "json"],
                       help="server log lines as text (default) or JSON")
    add_engine_flags(serve)
    from .cluster.launch import add_flags as add_cluster_flags

    add_cluster_flags(serve)
    serve.set_defaults(func=cmd_serve)
