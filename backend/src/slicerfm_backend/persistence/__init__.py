"""What the server keeps in its state directory (``SLICERFM_STATE_DIR``) so that a restart,
or ``kill -9``, loses at most the request in flight: each session's journal and snapshots
(:mod:`.session_files`), uploaded images (:mod:`.image_files`), the users file
(:mod:`slicerfm_backend.auth.users`) and the audit log. :mod:`.state_dir` owns the folder."""
