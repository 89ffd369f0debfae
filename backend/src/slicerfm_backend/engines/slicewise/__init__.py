"""What the slice engines (``medsam``, ``sam``) share: a 2-D promptable network applied to
one slice of a volume at a time, with propagation to the neighbouring slices.

- ``engine.py``      :class:`SliceEngine`: options, weights, one slice, propagation
- ``prompts.py``     a segment's prompts as boxes and points on slices of one axis
- ``walk.py``        propagation through neighbouring slices and its stop rules
- ``slices.py``      slices of a (K, J, I) volume: extraction, spacing, plane names
- ``intensity.py``   CT window / MR percentiles to 8-bit grey levels (MedSAM's recipe)
- ``frame.py``       a slice inside the network's square input; prompts in its pixels
- ``sam_network.py`` segment-anything's network: build, strict loading, encode, decode (torch)

Importing this package imports neither torch nor segment-anything.
"""
