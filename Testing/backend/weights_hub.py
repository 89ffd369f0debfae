"""A local stand-in for the Hugging Face hub: the two requests ``hf_hub_download`` makes.

``HEAD /{repo_id}/resolve/{revision}/{filename}`` answers with ``X-Repo-Commit``, ``ETag``
and ``Content-Length``; ``GET`` on the same path sends the bytes. ``files`` maps
``(repo_id, revision, filename)`` to bytes; ``advertise`` optionally maps the same key to a
size announced in the headers that differs from what is sent (a broken transfer).
``requests`` logs ``(method, path)``.
"""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class StandInHub:
    def __init__(self):
        self.files = {}
        self.advertise = {}
        self.requests = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _lookup(self):
                hub.requests.append((self.command, self.path))
                head, sep, tail = self.path.partition("/resolve/")
                revision, _, filename = tail.partition("/")
                key = (head.strip("/"), revision, filename)
                return key, hub.files.get(key) if sep else None

            def _headers(self, key, body):
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", '"%s"' % hashlib.sha256(body).hexdigest())
                self.send_header("Content-Length", str(hub.advertise.get(key, len(body))))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def do_HEAD(self):
                key, body = self._lookup()
                if body is None:
                    self.send_error(404)
                    return
                self._headers(key, body)

            def do_GET(self):
                key, body = self._lookup()
                if body is None:
                    self.send_error(404)
                    return
                self._headers(key, body)
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
