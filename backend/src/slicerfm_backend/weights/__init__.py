"""Model weights: the catalogue of released checkpoints and the local store that fetches,
verifies and imports them (``slicerfm-backend weights ...``).

- ``catalogue.py``  what each engine needs (hub repository, file, revision, licence, pinned
                    size and digests where published; docs/MODELS.md)
- ``store.py``      the files under a cache directory we control: fetch, verify, import;
                    never loads them
- ``checks.py``     size and digest checks, their errors
- ``resolve.py``    where an engine's checkpoint is (the only lookup engines use, through
                    ``EngineBase.checkpoint()``), honouring ``--checkpoint ENGINE=PATH`` /
                    ``SLICERFM_CHECKPOINTS`` overrides
- ``state_dict.py`` one strict torch load and key/shape check for every network engine
- ``cli.py``        ``slicerfm-backend weights list | fetch | verify | path | import``
"""
