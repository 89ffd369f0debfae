"""Model weights: the catalogue of released checkpoints and the local store that fetches,
verifies and imports them (``slicerfm-backend weights ...``).

``catalogue`` says what each engine needs (hub repository, file, revision, licence, pinned
size and digests where known); ``store`` keeps the files under a cache directory we control
and never loads them; ``resolve`` tells engines where their checkpoint is, honouring
explicit ``--checkpoint ENGINE=PATH`` / ``SLICERFM_CHECKPOINTS`` overrides.
"""
