"""PNG plots of evaluation results (matplotlib, Agg: no display needed).

Axis-level drawing functions (``draw_*``) are shared with ``slicerfm-backend benchmark``,
which puts several of them in one figure; ``plot_*`` write one figure file.

* :func:`plot_clicks` -- ``evaluate --plot``: Dice after each click and latency per click.
* :func:`plot_registration` -- ``evaluate-registration --plot``: Dice per structure before
  and after registration, with the folding fraction.

matplotlib is the ``bench`` extra of slicerfm-backend; without it these raise a
RuntimeError that says how to install it.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence

INSTALL_HINT = "plots need matplotlib: pip install 'slicerfm-backend[bench]' (or pip install matplotlib)"


def new_figure(width_in: float, height_in: float, rows: int = 1, columns: int = 1, **options):
    """``(figure, axes array)`` drawn with the Agg backend (nothing global is touched)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError(INSTALL_HINT) from error
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, **options)
    return figure, axes


def save(figure, path: str) -> str:
    """Write ``figure`` as a PNG at ``path`` (100 dpi); returns the path."""
    figure.savefig(path, dpi=100, format="png")
    return path


def draw_dice_per_click(ax, series: Mapping[str, Sequence[float]], goal: Optional[float] = None,
                        title: Optional[str] = None) -> None:
    """Dice after click 1, 2, ... (one line per name in ``series``); a dotted line at ``goal``."""
    longest = 1
    for name, dices in series.items():
        clicks = range(1, len(dices) + 1)
        ax.plot(clicks, dices, marker="o", markersize=3, linewidth=1.2, label=name)
        longest = max(longest, len(dices))
    if goal is not None:
        ax.axhline(goal, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(0.5, longest + 0.5)
    ax.set_ylim(0.0, 1.0)
    ax.set_xticks(range(1, longest + 1))
    ax.set_xlabel("clicks")
    ax.set_ylabel("Dice")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7, ncol=2 if len(series) > 6 else 1, loc="lower right")


def draw_latency_per_click(ax, latency_ms: Sequence[float], positive: Optional[Sequence[bool]] = None,
                           title: Optional[str] = None) -> None:
    """Bars of the round trip per click (ms); negative clicks hatched."""
    clicks = list(range(1, len(latency_ms) + 1))
    bars = ax.bar(clicks, latency_ms, color="tab:blue", width=0.7)
    for bar, sign in zip(bars, positive or []):
        if not sign:
            bar.set_hatch("//")
            bar.set_facecolor("tab:orange")
    ax.set_xticks(clicks)
    ax.set_xlabel("click (hatched: negative)")
    ax.set_ylabel("round trip (ms)")
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize=10)


def plot_clicks(result: Mapping, path: str, title: str = "") -> str:
    """Two panels from an ``evaluate`` result (``dice``, ``latency_s``, ``clicks``)."""
    figure, axes = new_figure(9.0, 3.4, 1, 2)
    draw_dice_per_click(axes[0, 0], {"Dice": result["dice"]}, title="Dice after each click")
    positive = [c["positive"] for c in result.get("clicks", [])]
    draw_latency_per_click(axes[0, 1], [1000.0 * s for s in result["latency_s"]], positive,
                           title="latency per click (client round trip)")
    if title:
        figure.suptitle(title, fontsize=11)
    return save(figure, path)


def draw_dice_before_after(ax, labels: Sequence, before: Mapping, after: Mapping,
                           names: Optional[Mapping] = None, title: Optional[str] = None) -> None:
    """One row per label (sorted by Dice after): a line from before (grey) to after (blue)."""
    order = sorted(labels, key=lambda label: after[label])
    rows = range(len(order))
    for row, label in zip(rows, order):
        ax.plot([before[label], after[label]], [row, row], color="lightgrey", linewidth=2, zorder=1)
    ax.scatter([before[label] for label in order], rows, color="grey", s=14, label="before", zorder=2)
    ax.scatter([after[label] for label in order], rows, color="tab:blue", s=14, label="after", zorder=3)
    ax.set_yticks(list(rows))
    ax.set_yticklabels([str(names.get(label, label)) if names else str(label) for label in order], fontsize=7)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("Dice")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)


def registration_title(report: Mapping, engine: str = "") -> str:
    """``engine: mean Dice a -> b, folding c %`` for a registration report."""
    folding = report.get("neg_jacobian_fraction")
    text = f"mean Dice {report['mean_dice_before']:.3f} → {report['mean_dice_after']:.3f}"
    if folding is not None:
        text += f", folding {100 * folding:.3f} %"
    return f"{engine}: {text}" if engine else text


def plot_registration(report: Mapping, path: str, engine: str = "",
                      names: Optional[Mapping] = None) -> str:
    """Dice per label before/after from an ``evaluate-registration`` report."""
    labels = list(report["labels"])
    before = _by_label(report["dice_before"], labels)
    after = _by_label(report["dice_after"], labels)
    figure, axes = new_figure(6.5, max(3.0, 0.2 * len(labels) + 1.2))
    draw_dice_before_after(axes[0, 0], labels, before, after, names, registration_title(report, engine))
    return save(figure, path)


def _by_label(values: Mapping, labels: Iterable) -> Dict:
    """``values`` keyed by label whether its keys are the labels or their strings (JSON)."""
    return {label: float(values[label] if label in values else values[str(label)]) for label in labels}
