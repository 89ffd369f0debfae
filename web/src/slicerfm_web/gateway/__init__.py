"""The ``slicerfm-web`` server: tab processes on demand, forwarding, token, local backend."""
