"""PNG of a month: daily productive hours against ordered hours and the 95–110 % band.

Bars are productive hours; a day under 95 % of its order is drawn in red, one within the
band in green, one above 110 % in orange (the excess is not paid), a day without order in
grey. The band is shaded around the ordered hours. Agg backend: no display needed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ledger.months import Month
from ledger.reports import BILLABLE_CAP_PERCENT, FLOOR_PERCENT

COLOURS = {"under": "#c0392b", "band": "#27ae60", "over": "#e67e22", "unordered": "#95a5a6"}


def day_status(productive_h: float, ordered_h: float | None) -> str:
    if ordered_h is None or ordered_h <= 0:
        return "unordered"
    if productive_h * 100 < ordered_h * FLOOR_PERCENT:
        return "under"
    if productive_h * 100 > ordered_h * BILLABLE_CAP_PERCENT:
        return "over"
    return "band"


def plot_month(month: Month, series: list[tuple[date, float, float | None]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    days = [d.day for d, _, _ in series]
    productive = [p for _, p, _ in series]
    ordered = [o for _, _, o in series]
    colours = [COLOURS[day_status(p, o)] for _, p, o in series]

    figure, axes = plt.subplots(figsize=(11, 5.5), dpi=100)
    try:
        ordered_x = [d for d, o in zip(days, ordered, strict=True) if o is not None]
        ordered_y = [o for o in ordered if o is not None]
        low = [o * FLOOR_PERCENT / 100 for o in ordered_y]
        high = [o * BILLABLE_CAP_PERCENT / 100 for o in ordered_y]
        heights = [h - lo for h, lo in zip(high, low, strict=True)]
        axes.bar(ordered_x, heights, bottom=low, width=0.9, color="#3498db", alpha=0.25,
                 zorder=1)
        axes.bar(days, productive, color=colours, width=0.6, zorder=2)
        axes.hlines(ordered_y, [d - 0.45 for d in ordered_x], [d + 0.45 for d in ordered_x],
                    color="#2c3e50", linewidth=1.8, zorder=3)
        axes.set_xlim(0.5, len(days) + 0.5)
        axes.set_xticks(days)
        axes.set_xlabel("jour")
        axes.set_ylabel("heures")
        axes.set_title(f"SC3.2 — heures productives par jour, {month.french_name()}")
        handles = [
            Patch(color="#3498db", alpha=0.25,
                  label=f"bande {FLOOR_PERCENT}–{BILLABLE_CAP_PERCENT} % de la commande"),
            Line2D([], [], color="#2c3e50", linewidth=1.8, label="heures commandées"),
            Patch(color=COLOURS["band"], label="heures productives dans la bande"),
            Patch(color=COLOURS["under"], label=f"sous {FLOOR_PERCENT} % de la commande"),
            Patch(color=COLOURS["over"], label=f"au-delà de {BILLABLE_CAP_PERCENT} % (non payé)"),
            Patch(color=COLOURS["unordered"], label="jour sans commande"),
        ]
        axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3,
                    fontsize=8, frameon=False)
        top = max([*productive, *high, 0.0])
        axes.set_ylim(0, top * 1.1 if top > 0 else 1)
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, format="png")
    finally:
        plt.close(figure)
