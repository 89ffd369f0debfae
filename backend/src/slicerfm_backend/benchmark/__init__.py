"""``slicerfm-backend benchmark``: the measurements behind every figure in docs/BENCHMARKS.md.

One implementation of each measurement, called by the command (which writes the report,
its PNG plots and the JSON of every figure) and by the scripts in ``benchmarks/`` (which
print the same figures as text). Modules:

* :mod:`.common` -- sample data, process memory, statistics, run facts (date, load);
* :mod:`.machine` -- what the figures were measured on (CPU, cores, GPU, library versions);
* :mod:`.phantom`, :mod:`.ball`, :mod:`.servers` -- the synthetic CT, the negligible
  ``bench_ball`` engine and real server processes;
* measurements: :mod:`.dice`, :mod:`.classic_fine`, :mod:`.protocol`, :mod:`.uploads`,
  :mod:`.codecs`, :mod:`.sam_med3d`, :mod:`.vista3d`, :mod:`.registration`, :mod:`.gpu`;
* :mod:`.sections` -- which measurements the command runs, quick and full;
* :mod:`.plots`, :mod:`.report` (+ ``report_*`` templates), :mod:`.compare` -- output;
* :mod:`.cli` -- the subcommand.

Nothing here is imported by the server.
"""
