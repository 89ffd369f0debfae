"""Deformable registration: engines that map fixed-image points to moving-image points."""
