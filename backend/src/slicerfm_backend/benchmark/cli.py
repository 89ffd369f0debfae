"""``slicerfm-backend benchmark``: measure, draw, report, compare.

    slicerfm-backend benchmark [--quick] [--engines classic,sam-med3d,...] [--sections a,b]
                               [--out DIR] [--update] [--compare OLD.json] [--report-only]
                               [--gpu-results gpu.json]
    slicerfm-backend benchmark --compare OLD.json --against NEW.json

Writes ``DIR/BENCHMARKS.md`` (``--out docs`` regenerates docs/BENCHMARKS.md), its plots and
``figures.json`` under ``DIR/benchmarks/``. Exit status 0 when every section measured, 1 when
a section failed (the others are still written), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from pathlib import Path
from typing import List, Optional

PLOTS_FOLDER = "benchmarks"


def paths(out: Path):
    """``(report, plots folder, figures.json)`` under ``out``."""
    return out / "BENCHMARKS.md", out / PLOTS_FOLDER, out / PLOTS_FOLDER / "figures.json"


def write_report(document: dict, out: Path) -> Path:
    """Plots and Markdown for ``document`` under ``out``; returns the report's path."""
    from . import plots, report, runner

    report_path, plots_folder, figures_path = paths(out)
    runner.save(document, figures_path)
    drawn = plots.draw_all(document["sections"], plots_folder)
    report_path.write_text(report.build(document, drawn, PLOTS_FOLDER), encoding="utf-8")
    return report_path


def _names(text: Optional[str]) -> Optional[List[str]]:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _compare(args) -> int:
    from . import compare, runner

    try:
        old = runner.load(Path(args.compare))
        new = runner.load(Path(args.against)) if args.against else runner.load(paths(Path(args.out))[2])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(compare.report(old, new, everything=args.all_figures))
    return 0


def _measure(args, document: dict, save=None) -> int:
    from . import sections as catalogue
    from .runner import run_sections
    from .servers import sigterm_stops_servers
    from ..progress import bar, write

    engines = _names(args.engines) or list(catalogue.QUICK_ENGINES if args.quick else catalogue.ENGINES)
    try:
        chosen = catalogue.selected(engines, _names(args.sections))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not chosen:
        print("error: no section to measure for these engines and sections", file=sys.stderr)
        return 2
    with sigterm_stops_servers(), bar(total=len(chosen), desc="benchmark", unit="section") as progress:
        failures = run_sections(document, chosen, args.quick, engines, log=write, progress=progress,
                                after_each=save)
    for name, why in failures.items():
        print(f"section {name} failed: {why}", file=sys.stderr)
    return 1 if failures else 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from . import runner
    from .machine import describe

    if args.compare and (args.against or args.report_only):
        return _compare(args)
    out = Path(args.out)
    figures_path = paths(out)[2]
    older = runner.load(figures_path) if figures_path.exists() and (args.update or args.report_only) else None
    if args.report_only:
        if older is None:
            print(f"error: --report-only needs {figures_path} (run the benchmark first)", file=sys.stderr)
            return 2
        document = older
        status = 0
    else:
        command = "slicerfm-backend benchmark " + " ".join(shlex.quote(a) for a in args.argv)
        document = runner.new_document(command.strip(), describe())
        def save(measured: dict) -> None:  # figures so far (with the kept older sections) on disk
            runner.save(runner.merge(copy.deepcopy(measured), older), figures_path)

        status = _measure(args, document, save)
        if status == 2:
            return status
        runner.merge(document, older)
    if args.gpu_results:
        try:
            runner.add_section(document, "gpu", runner.load_section(Path(args.gpu_results)))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    report_path = write_report(document, out)
    print(f"report: {report_path}; plots and figures.json in {paths(out)[1]}")
    if args.compare:
        from . import compare

        print(compare.report(runner.load(Path(args.compare)), document, everything=args.all_figures))
    return status


def add_parsers(subparsers) -> None:
    """Add ``benchmark`` to the ``slicerfm-backend`` parser."""
    from .sections import ENGINES, QUICK_ENGINES, SECTIONS

    p = subparsers.add_parser("benchmark", help="measure every engine, write a report with plots (docs/BENCHMARKS.md)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="every section sized down: a few minutes on 2 cores")
    p.add_argument("--engines", help=f"comma-separated among {', '.join(ENGINES)} (default: all; with --quick "
                                     f"{', '.join(QUICK_ENGINES)})")
    p.add_argument("--sections", help="only these sections: " + ", ".join(s.name for s in SECTIONS))
    p.add_argument("--out", default="benchmark-report",
                   help="folder of the report (docs: regenerate docs/BENCHMARKS.md)")
    p.add_argument("--update", action="store_true",
                   help="keep the sections of OUT's figures.json that this run does not measure")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: redraw OUT's report from its figures.json")
    p.add_argument("--gpu-results", help="a GPU suite's gpu.json to include (benchmarks/gpu_suite.sh)")
    p.add_argument("--compare", metavar="OLD.json", help="print new/old ratios of the headline figures")
    p.add_argument("--against", metavar="NEW.json", help="with --compare: compare these two files, measure nothing")
    p.add_argument("--all-figures", action="store_true", help="with --compare: every figure, not only the headline")
    p.set_defaults(func=_with_argv(cmd_benchmark))


def _with_argv(func):
    """Keep the command line in ``args.argv`` (the report names the command that made it)."""
    def run(args: argparse.Namespace) -> int:
        if not hasattr(args, "argv"):
            args.argv = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "benchmark" else []
        return func(args)

    return run
