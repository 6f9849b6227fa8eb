#!/usr/bin/env python3
"""Writes the grouped bar chart of RESULTS.md: requests per second (the
median over the passes) of every target on every route, as an SVG, from the
harness's results.tsv. No plotting library: the SVG is written by hand.

Usage: chart.py RESULTS_TSV OUT_SVG TARGETS ROUTES TITLE
(TARGETS and ROUTES comma-separated, in the order to draw them).

The y axis is logarithmic, because plaintext serves about a hundred times
the requests of queries and updates; every bar carries its figure."""
import math
import statistics
import sys
from html import escape

# Colour-blind-safe (Okabe and Ito), one per target in order.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def medians(path):
    """{(target, route): median req/s} over the passes that have a figure."""
    runs = {}
    with open(path, encoding="utf-8") as tsv:
        for line in tsv:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 4 or not fields[3]:
                continue
            runs.setdefault((fields[1], fields[2]), []).append(float(fields[3]))
    return {key: statistics.median(values) for key, values in runs.items()}


def fmt(rps):
    return f"{rps / 1000:.1f}k" if rps >= 10000 else f"{rps:,.0f}"


def chart(figures, targets, routes, title):
    targets = [t for t in targets if any((t, r) in figures for r in routes)]
    bar, gap, left, top, bottom, height = 18, 26, 70, 60, 60, 360
    group = bar * max(len(targets), 1) + gap
    width = left + group * len(routes) + 20
    values = [v for v in figures.values() if v > 0] or [1]
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))

    def y(value):
        return top + height - height * (math.log10(max(value, low)) - math.log10(low)) / (
            math.log10(high) - math.log10(low)
        )

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + bottom + 24 * ((len(targets) + 3) // 4)}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="40" fill="#555">requests per second, median of the passes (logarithmic axis; higher is better)</text>',
    ]
    tick = low
    while tick <= high:
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{fmt(tick)}</text>')
        tick *= 10
    for g, route in enumerate(routes):
        x0 = left + g * group + gap / 2
        for i, target in enumerate(targets):
            value = figures.get((target, route))
            if value is None:
                continue
            x = x0 + i * bar
            out.append(
                f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar - 2}" height="{top + height - y(value):.1f}" '
                f'fill="{COLOURS[i % len(COLOURS)]}"><title>{escape(target)} {escape(route)}: {value:,.0f} req/s</title></rect>'
            )
            out.append(
                f'<text transform="translate({x + bar / 2 + 3:.1f},{y(value) - 3:.1f}) rotate(-90)" font-size="9">{fmt(value)}</text>'
            )
        out.append(
            f'<text x="{x0 + bar * len(targets) / 2:.1f}" y="{top + height + 16}" text-anchor="middle" font-weight="bold">{escape(route)}</text>'
        )
    out.append(f'<line x1="{left}" x2="{width - 20}" y1="{top + height}" y2="{top + height}" stroke="#333"/>')
    for i, target in enumerate(targets):
        lx = left + (i % 4) * 170
        ly = top + height + 38 + 20 * (i // 4)
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        out.append(f'<text x="{lx + 17}" y="{ly}">{escape(target)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    tsv, svg, targets, routes, title = sys.argv[1:]
    figures = medians(tsv)
    with open(svg, "w", encoding="utf-8") as out:
        out.write(chart(figures, targets.split(","), routes.split(","), title))


if __name__ == "__main__":
    main()
