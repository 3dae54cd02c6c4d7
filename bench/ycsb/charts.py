"""PNG charts for the YCSB suite, drawn from the JSON results that bench/ycsb/main.ts writes.

Usage: python charts.py <results.json> <out-prefix>
Writes <out-prefix>-throughput.png, -latency.png, -closed.png and -percentiles.png (those that have
data) and prints the paths of the files written, one per line.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # No display: render straight to files.
import matplotlib.pyplot as plt  # noqa: E402


def cell_name(cell):
    return f"{cell['workload']} {cell['distribution']}"


def grid(count):
    cols = min(2, count)
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat


def series(cells, label):
    mine = sorted((c for c in cells if c["label"] == label), key=lambda c: c["result"]["offeredOps"])
    return mine


def throughput_chart(open_cells, labels, out):
    names = sorted({cell_name(c) for c in open_cells})
    fig, axes = grid(len(names))
    for ax, name in zip(axes, names):
        cells = [c for c in open_cells if cell_name(c) == name]
        top = max(c["result"]["offeredOps"] for c in cells)
        ax.plot([0, top], [0, top], color="grey", linestyle=":", label="offered = achieved")
        for label in labels:
            s = series(cells, label)
            if s:
                line, = ax.plot([c["result"]["offeredOps"] for c in s], [c["result"]["throughputOps"] for c in s], marker="o", label=label)
                # Goodput (successful answers only) where the results have it; under overload the
                # gap to the achieved line is what the target refused.
                if all("goodputOps" in c["result"] for c in s):
                    ax.plot([c["result"]["offeredOps"] for c in s], [c["result"]["goodputOps"] for c in s], marker="x", linestyle="--", color=line.get_color(), label=f"{label} (goodput)")
        ax.set_title(f"workload {name}: throughput vs offered load (open loop)")
        ax.set_xlabel("offered ops/s")
        ax.set_ylabel("achieved ops/s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def latency_chart(open_cells, labels, out):
    names = sorted({cell_name(c) for c in open_cells})
    fig, axes = grid(len(names))
    for ax, name in zip(axes, names):
        cells = [c for c in open_cells if cell_name(c) == name]
        for index, label in enumerate(labels):
            s = series(cells, label)
            if not s:
                continue
            color = f"C{index}"
            x = [c["result"]["offeredOps"] for c in s]
            ax.plot(x, [c["result"]["all"]["p50Ms"] for c in s], marker="o", color=color, label=f"{label} p50")
            ax.plot(x, [c["result"]["all"]["p999Ms"] for c in s], marker="^", linestyle="--", color=color, label=f"{label} p99.9")
        ax.set_yscale("log")
        ax.set_title(f"workload {name}: latency from scheduled time (open loop)")
        ax.set_xlabel("offered ops/s")
        ax.set_ylabel("latency ms (log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def closed_chart(closed_cells, labels, out):
    names = sorted({cell_name(c) for c in closed_cells})
    fig, ax = plt.subplots(figsize=(max(6.5, 1.8 * len(names) + 3), 4.5))
    width = 0.8 / max(1, len(labels))
    for index, label in enumerate(labels):
        values = []
        for name in names:
            match = [c for c in closed_cells if c["label"] == label and cell_name(c) == name]
            values.append(match[0]["result"]["throughputOps"] if match else 0)
        positions = [i + index * width for i in range(len(names))]
        bars = ax.bar(positions, values, width, label=label)
        ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in values], fontsize=6)
    ax.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(names))], names)
    ax.set_ylabel("ops/s")
    ax.set_title("closed-loop maximum throughput by workload")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def percentiles_chart(cells, labels, mode_title, out):
    names = sorted({cell_name(c) for c in cells})
    fig, axes = grid(len(names))
    points = [("p50", "p50Ms"), ("p99", "p99Ms"), ("p99.9", "p999Ms"), ("max", "maxMs")]
    for ax, name in zip(axes, names):
        for label in labels:
            match = [c for c in cells if c["label"] == label and cell_name(c) == name]
            if match:
                latency = match[0]["result"]["all"]
                ax.plot([p[0] for p in points], [latency[p[1]] for p in points], marker="o", label=label)
        ax.set_yscale("log")
        ax.set_title(f"workload {name}: latency percentiles, {mode_title}")
        ax.set_ylabel("latency ms (log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    results_path, prefix = sys.argv[1], sys.argv[2]
    with open(results_path, encoding="utf-8") as handle:
        data = json.load(handle)
    labels = [t["label"] for t in data["targets"] if t["ran"]]
    cells = data["cells"]
    open_cells = [c for c in cells if c["result"]["mode"] == "open"]
    closed_cells = [c for c in cells if c["result"]["mode"] == "closed"]
    written = []
    if open_cells:
        throughput_chart(open_cells, labels, f"{prefix}-throughput.png")
        latency_chart(open_cells, labels, f"{prefix}-latency.png")
        written += [f"{prefix}-throughput.png", f"{prefix}-latency.png"]
        lowest = min(c["result"]["offeredOps"] for c in open_cells)
        at_lowest = [c for c in open_cells if c["result"]["offeredOps"] == lowest]
        percentiles_chart(at_lowest, labels, f"open loop at {lowest} ops/s", f"{prefix}-percentiles.png")
        written.append(f"{prefix}-percentiles.png")
    elif closed_cells:
        percentiles_chart(closed_cells, labels, "closed loop", f"{prefix}-percentiles.png")
        written.append(f"{prefix}-percentiles.png")
    if closed_cells:
        closed_chart(closed_cells, labels, f"{prefix}-closed.png")
        written.append(f"{prefix}-closed.png")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
