"""Deformable registration: engines that map fixed-image points to moving-image points.

- ``base.py``     the interface (:class:`~.base.RegistrationEngine`) and the RAS convention
- ``registry.py`` built-in names -> ``module:Class`` (the ``REGISTRATION`` family)
- ``service.py``  ``POST /api/register`` requests as jobs (validation, masks, results)
- ``field.py``    displacement fields: warping, Jacobian, SimpleITK conversion (LPS)
- ``evaluate.py`` Dice of label maps before and after
- ``cli.py``      ``register`` and ``evaluate-registration``
- ``classic/``    built in: CPU, no weights (affine + demons + unfolding)
- ``gradicon/``   uniGradICON and multiGradICON
"""
