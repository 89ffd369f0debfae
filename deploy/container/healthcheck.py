#!/opt/slicerfm/bin/python
"""Container health check: exit 0 when the backend in this container answers GET /api/info.

/api/info needs no token, so the check reads no secret. It asks the address the server binds
(SLICERFM_HOST; the wildcard addresses are asked on loopback) on SLICERFM_PORT and expects
the backend's own answer, not just any HTTP server. Exit 1 with one line on stderr otherwise.
"""

import json
import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0  # below the image's HEALTHCHECK --timeout


def info_url() -> str:
    host = os.environ.get("SLICERFM_HOST", "127.0.0.1")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('SLICERFM_PORT', '8765')}/api/info"


def main() -> int:
    url = info_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            info = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if not isinstance(info, dict) or "protocol_version" not in info:
        print(f"unhealthy: {url} did not answer as a SlicerFM backend", file=sys.stderr)
        return 1
    print(f"healthy: {info.get('name')} {info.get('server_version')} (protocol {info['protocol_version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
