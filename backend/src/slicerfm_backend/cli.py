"""The ``slicerfm-backend`` command line: serve, engines, evaluate, weights.

Flags override ``SLICERFM_*`` environment variables (see :mod:`slicerfm_backend.settings`).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from typing import List, Optional

from slicerfm_client import protocol

from . import __version__
from .settings import Settings

log = logging.getLogger("slicerfm_backend")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment and the flags; exits with the reason when they are wrong."""
    try:
        return _build_settings(args)
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        raise SystemExit(f"error: {error}") from None


def _build_settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for field in ("host", "port", "device", "engines", "registration_engines", "max_sessions", "max_jobs",
                  "log_level"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    token_file = getattr(args, "token_file", None)
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            overrides["token"] = handle.read().strip()
    settings = Settings(**overrides)  # keyword arguments win over SLICERFM_* variables
    for spec in getattr(args, "checkpoint", None) or []:
        from .weights.resolve import parse_checkpoints

        settings.checkpoints.update(parse_checkpoints(spec))
    if getattr(args, "engine_option", None):
        from .engines.options import parse_option_specs

        for engine, given in parse_option_specs(args.engine_option).items():
            settings.engine_options.setdefault(engine, {}).update(given)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
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
    log.info("SlicerFM backend %s (protocol %s) on http://%s:%d, engines: %s, device: %s, token: %s",
             __version__, protocol.PROTOCOL_VERSION, settings.host, settings.port,
             ", ".join(settings.engines), state.engines.device,
             "required" if settings.token else "none")
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=5)
    return 0


def cmd_engines(args: argparse.Namespace) -> int:
    from .engines.registry import ENGINE_CLASSES, EngineManager

    settings = _settings_from(args)
    names = sorted(ENGINE_CLASSES) if args.all else settings.engines
    manager = EngineManager(names, settings.device, weights_dir=str(settings.weights_dir),
                            checkpoints=settings.checkpoints, engine_options=settings.engine_options)
    rows = manager.describe()
    print(f"{'engine':<12} {'prompts':<12} {'modalities':<10} {'device':<8} {'weights':<9} description")
    for row in rows:
        weights = ("present" if row["weights_present"] else "MISSING") if row["needs_weights"] else "none"
        print(f"{row['name']:<12} {','.join(row['prompt_kinds']):<12} {','.join(row['modalities']):<10} "
              f"{row['device']:<8} {weights:<9} {row['description']}")
        if row["needs_weights"] and not row["weights_present"]:
            print(f"{'':<12} {row['weights_detail']}")
        accepted = _engine_option_names(row["name"])
        if accepted:
            current = ", ".join(f"{k}={v}" for k, v in row["options"].items()) or "defaults"
            print(f"{'':<12} options (--engine-option {row['name']}.KEY=VALUE): {accepted}; set: {current}")
    from .registration.cli import print_engines

    print_engines(settings, args.all)
    return 0


def _engine_option_names(name: str) -> str:
    """The option names an engine accepts, with the allowed values where they are a choice."""
    from .engines.registry import engine_class

    types = engine_class(name).option_types
    return ", ".join(f"{key} ({getattr(parser, '__name__', 'value').replace('_', ' ')})"
                     for key, parser in types.items())


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import run_evaluation

    return run_evaluation(args)


def cmd_weights(args: argparse.Namespace) -> int:
    from .weights import cli as weights_cli
    from .weights.checks import WeightsError

    try:
        settings = _settings_from(args)
        if args.weights_func is weights_cli.cmd_path:
            return weights_cli.cmd_path(args, settings.weights_dir, settings.checkpoints.get(args.engine))
        return args.weights_func(args, settings.weights_dir)
    except (WeightsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1


def _add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", action="append", metavar="ENGINE=PATH",
                        help="load this checkpoint file instead of the weights store (repeatable)")
    parser.add_argument("--engine-option", action="append", dest="engine_option", metavar="ENGINE.KEY=VALUE",
                        help="engine setting, e.g. sam-med3d.max_crops=4 or sam-med3d.precision=fp16 "
                             "(repeatable; `engines` lists each engine's options)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slicerfm-backend",
                                     description="SlicerFM inference server for 3D Slicer")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__} (protocol {protocol.PROTOCOL_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
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
    _add_checkpoint_flag(serve)
    serve.set_defaults(func=cmd_serve)

    engines = sub.add_parser("engines", help="list engines, their prompts, device and weights")
    engines.add_argument("--device")
    engines.add_argument("--engines")
    engines.add_argument("--all", action="store_true", help="all known engines, not only served ones")
    _add_checkpoint_flag(engines)
    engines.set_defaults(func=cmd_engines)

    evaluate = sub.add_parser("evaluate", help="simulate a user clicking, report Dice per click")
    evaluate.add_argument("--engine", default="classic")
    evaluate.add_argument("--image", required=True, help="image file (NIfTI, NRRD, ...)")
    evaluate.add_argument("--label", required=True, help="reference label map on the image's grid")
    evaluate.add_argument("--label-id", type=int, required=True, dest="label_id")
    evaluate.add_argument("--clicks", type=int, default=10)
    evaluate.add_argument("--json", help="write the results as JSON to this file")
    evaluate.add_argument("--server", help="URL of a running server (default: start one)")
    evaluate.add_argument("--modality", default="unknown", choices=["CT", "MR", "unknown"])
    evaluate.add_argument("--device", help="device of the server started for the run")
    _add_checkpoint_flag(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    from .registration.cli import add_parsers as add_registration_parsers
    from .weights.cli import add_parser as add_weights_parser

    add_weights_parser(sub, cmd_weights)
    add_registration_parsers(sub)
    __import__("slicerfm_backend.engines.vista3d.cli", fromlist=["add_parsers"]).add_parsers(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(args, "log_level", None) or os.environ.get("SLICERFM_LOG_LEVEL", "info")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    return int(args.func(args) or 0)
