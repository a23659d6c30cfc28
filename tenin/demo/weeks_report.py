"""The weeks demo's outputs: the chart (SVG and PNG), every figure (JSON) and the table (markdown)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WeekRow:
    """One point of the chart: the served policy after `week` weeks, and what the loop did."""

    week: int
    served: str  # the policy and version that served during the next week
    per_1000: float  # its incremental profit per 1,000 requests, by the truth
    oracle_per_1000: float
    candidate: str | None = None
    candidate_per_1000: float | None = None  # the week's candidate, by the truth, served or not
    action: str | None = None
    reason: str | None = None
    estimates: dict[str, Any] | None = field(default=None, repr=False)


def write_outputs(rows: list[WeekRow], out_dir: Path) -> dict[str, Path]:
    """learning_weeks.svg and .png (the chart), .json (every figure), .md (the table) in out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    weeks = [r.week for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(weeks, [r.oracle_per_1000 for r in rows], "k--", label="oracle (hidden truth)")
    ax.plot(weeks, [r.per_1000 for r in rows], "o-", label="served policy")
    tried = [(r.week, c) for r in rows if (c := r.candidate_per_1000) is not None]
    ax.plot(
        [w for w, _ in tried],
        [c for _, c in tried],
        "x",
        color="C3",
        label="the week's candidate",
    )
    for r in rows[1:]:
        ax.annotate(
            r.action or "",
            (r.week, r.per_1000),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax.axhline(0, color="grey", lw=0.5, label="no coupons")
    ax.set(
        xlabel="weeks of logged decisions retrained on",
        ylabel="incremental profit per 1,000 requests (yen)",
        title="The learning loop on the simulator",
    )
    ax.set_xticks(weeks)
    ax.legend()
    fig.tight_layout()
    paths = {
        "svg": out_dir / "learning_weeks.svg",
        "png": out_dir / "learning_weeks.png",
        "json": out_dir / "learning_weeks.json",
        "md": out_dir / "learning_weeks.md",
    }
    fig.savefig(paths["svg"])
    fig.savefig(paths["png"], dpi=110)
    plt.close(fig)
    paths["json"].write_text(json.dumps([asdict(r) for r in rows], indent=2, default=str) + "\n")
    lines = [
        "| week | served policy | per 1,000 requests (yen) | oracle (yen) | candidate (yen) "
        "| gate |",
        "|---:|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.week} | {r.served} | {r.per_1000:,.0f} | {r.oracle_per_1000:,.0f} | "
        f"{'-' if r.candidate_per_1000 is None else f'{r.candidate_per_1000:,.0f}'} | "
        f"{r.action or '-'} |"
        for r in rows
    ]
    paths["md"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
