"""Automatic segmentation: whole images labelled by class, as background jobs.

- ``service.py`` requests of ``POST /api/segment/auto``: validation, the job, its results;
                 the class list of ``GET /api/segment/auto/classes``
- ``cli.py``     ``slicerfm-backend segment`` (in this process, or on a server)

The engines implement the seam :class:`slicerfm_backend.engines.base.AutoSegmentation`
(VISTA3D does).
"""
