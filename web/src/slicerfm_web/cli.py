"""``slicerfm-web``: SlicerFM in the browser.

    slicerfm-web --local                      start a backend here too (CPU, classic engine)
    slicerfm-web --server https://gpu:8765 --token-file backend.token [--ca-bundle lab-ca.pem]
    SLICERFM_WEB_TOKEN=... slicerfm-web --server URL --host 0.0.0.0

Then open the printed address in a browser; every tab is its own session.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from .settings import DEFAULT_PORT, MIB, SettingsError, WebSettings, env, read_secret_file


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slicerfm-web", description="SlicerFM in the browser (trame-slicer): one scene "
        "per tab, the Slicer module's Logic, a SlicerFM backend for the models.")
    where = p.add_argument_group("backend")
    where.add_argument("--server", default=env("SERVER", ""), metavar="URL",
                       help="a running slicerfm-backend, e.g. http://127.0.0.1:8765")
    where.add_argument("--token-file", default=None, metavar="FILE",
                       help="file holding the backend's access token (or SLICERFM_TOKEN)")
    where.add_argument("--ca-bundle", default=env("CA_BUNDLE", ""), metavar="FILE",
                       help="an https:// server: PEM file of the certificate authority that "
                            "signed its certificate (default: the system's store)")
    where.add_argument("--allow-insecure-http", action="store_true",
                       default=env("ALLOW_INSECURE_HTTP", "") in ("1", "true", "yes"),
                       help="allow a plain http:// --server on another machine (the token and "
                            "the images cross the network unencrypted)")
    where.add_argument("--local", action="store_true",
                       help="start a slicerfm-backend on 127.0.0.1 for the tabs (default when "
                            "no --server is given)")
    where.add_argument("--backend", default=env("BACKEND", ""), metavar="PATH",
                       help="--local: the slicerfm-backend executable, a Python or its "
                            "environment folder (default: beside this Python, else PATH)")
    where.add_argument("--engines", default=env("ENGINES", "classic"),
                       help="--local: engines to serve, comma-separated (default classic)")
    where.add_argument("--device", default=env("DEVICE", "auto"),
                       help="--local: auto, cpu, cuda or cuda:N")
    web_group = p.add_argument_group("web server")
    web_group.add_argument("--host", default=env("HOST", "127.0.0.1"),
                           help="address to listen on (default 127.0.0.1; any other needs "
                                "an access token)")
    web_group.add_argument("--port", type=int, default=int(env("PORT", DEFAULT_PORT)))
    web_group.add_argument("--web-token-file", default=None, metavar="FILE",
                           help="file holding the web access token (or SLICERFM_WEB_TOKEN)")
    web_group.add_argument("--data-dir", default=env("DATA_DIR", ""), metavar="DIR",
                           help="a folder whose images the pages may open (nothing outside it)")
    web_group.add_argument("--max-tabs", type=int, default=int(env("MAX_TABS", 8)))
    web_group.add_argument("--spare-tabs", type=int, default=int(env("SPARE_TABS", 1)),
                           help="tab processes kept started so that a new tab opens at once")
    web_group.add_argument("--tab-grace-s", type=int, default=int(env("TAB_GRACE_S", 30)),
                           help="seconds a closed tab keeps its session (a reload finds it)")
    web_group.add_argument("--max-upload-mb", type=int, default=int(env("MAX_UPLOAD_MB", 2048)))
    web_group.add_argument("--max-voxels", type=int, default=int(env("MAX_VOXELS", 600_000_000)))
    web_group.add_argument("--auto-engines", default=env("AUTO_ENGINES", "vista3d"),
                           help="engines offered for automatic segmentation when served")
    web_group.add_argument("--log-dir", default=env("LOG_DIR", ""),
                           help="folder for the backend's and the tabs' logs (default: a "
                                "new temporary folder)")
    return p


def settings_from_args(args) -> WebSettings:
    import os

    backend_token = read_secret_file(args.token_file, "backend token") or \
        os.environ.get("SLICERFM_TOKEN", "")
    web_token = read_secret_file(args.web_token_file, "web access token") or env("TOKEN", "")
    return WebSettings(
        host=args.host, port=args.port, server_url=args.server.strip(),
        local=bool(args.local or not args.server.strip()), backend=args.backend,
        engines=args.engines, device=args.device, backend_token=backend_token,
        ca_bundle=args.ca_bundle.strip(), allow_insecure_http=args.allow_insecure_http,
        web_token=web_token, data_dir=args.data_dir, max_tabs=args.max_tabs,
        spare_tabs=args.spare_tabs, tab_grace_s=args.tab_grace_s,
        max_upload_bytes=args.max_upload_mb * MIB, max_voxels=args.max_voxels,
        auto_engines=args.auto_engines, log_dir=args.log_dir).validate()


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s slicerfm-web %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from slicerfm_client.errors import ConfigurationError

    try:
        settings = settings_from_args(parser().parse_args(argv))
        from .gateway.app import make_app

        app = make_app(settings)
    except (SettingsError, ConfigurationError) as error:
        print(f"slicerfm-web: {error}", file=sys.stderr)
        return 2
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"SlicerFM web: open http://{host}:{settings.port}/ in a browser "
          f"({'local backend' if settings.local else 'backend ' + settings.server_url}). "
          "Ctrl+C stops it.", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                handle_signals=True, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
