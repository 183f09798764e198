"""bench/results/: results.json, results.md (tables, ratios to the lean reference, targets) and latency.png."""

from __future__ import annotations

import json
from pathlib import Path

PERCENTILES = ("p50", "p95", "p99")
ENDPOINT_LABELS = {
    "list": "list, first page (limit 50)",
    "deep_page": "list, page at 90 % depth (cursor)",
    "filtered": "list, status=rejected",
    "summary": "summary",
    "detail": "detail (with events)",
    "propose": "propose",
    "approve": "approve",
}


def evaluate_targets(results: dict) -> list[dict]:
    """The issue's gunicorn targets, each with its measured value, its threshold and whether it was met."""
    targets = []
    for backend, data in results["backends"].items():
        sizes = sorted(data["sizes"], key=int)
        if not sizes:
            continue
        small, large = sizes[0], sizes[-1]

        def side(size, name, which="app", _data=data):
            return _data["sizes"][size]["endpoints"][name][which]

        # The lean route's same ratio, measured alongside, tells the database's own scaling (and the
        # machine's drift between sizes) from the app's.
        if small != large:
            for name in ("list", "detail", "filtered"):
                ratio = side(large, name)["p50_ms"] / side(small, name)["p50_ms"]
                lean = side(large, name, "lean")["p50_ms"] / side(small, name, "lean")["p50_ms"]
                label = f"{name} p50 at {int(large):,} ≤ 1.5× p50 at {int(small):,}"
                targets.append(_target(backend, label, ratio, 1.5, "×", "le", lean))
        for size in sizes:
            ratio = side(size, "deep_page")["p50_ms"] / side(size, "list")["p50_ms"]
            lean = side(size, "deep_page", "lean")["p50_ms"] / side(size, "list", "lean")["p50_ms"]
            label = f"deep page p50 ≤ 1.5× first page p50 at {int(size):,}"
            targets.append(_target(backend, label, ratio, 1.5, "×", "le", lean))
        for size in sizes:
            for name, result in data["sizes"][size]["endpoints"].items():
                share = result["ratio"]["throughput_share"]
                label = f"{name} throughput ≥ 1/3 of lean at {int(size):,}"
                targets.append(_target(backend, label, share, 1 / 3, "", "ge"))
    return targets


def _target(backend, name, value, threshold, unit, comparison, lean=None) -> dict:
    met = {"le": value <= threshold, "lt": value < threshold, "ge": value >= threshold}[comparison]
    found = {"backend": backend, "target": name, "value": value, "threshold": threshold, "unit": unit, "met": met}
    return found if lean is None else {**found, "lean": lean}


def _format_value(target: dict) -> str:
    if target["unit"] == "":
        return f"{target['value']:.0%} (need ≥ {target['threshold']:.0%})"
    if target["unit"] == "×":
        lean = f"; lean route {target['lean']:.2f}×" if "lean" in target else ""
        return f"{target['value']:.2f}× (need ≤ {target['threshold']}×{lean})"
    return f"{target['value']:.1f} ms (need < {target['threshold']} ms)"


def markdown(results: dict, targets: list[dict]) -> str:
    settings = results["settings"]
    lines = [
        "# Deployment Actions benchmark",
        "",
        f"Started {results['started_at']}, {results.get('total_seconds', 0):.0f} s in all. "
        f"Load: {settings['client']}, {settings['connections']} connections, {settings['duration_s']:.0f} s per "
        f"endpoint and side in {settings.get('segments', 1)} interleaved segments (A B A B), each after "
        f"{settings['warmup_s'] / max(1, settings.get('segments', 1)):.1f} s of warm-up; gunicorn "
        f"{settings['gunicorn']}; rate-limit storage {settings['rate_limit_storage']}. Machine: "
        f"{results['machine']['cpus']} CPUs, load average {results['machine']['load_average_at_start'][0]:.1f} at "
        f"start, {results['machine'].get('load_average_at_end', [0])[0]:.1f} at end.",
        "",
        "The lean reference (bench/lean.py) answers the same requests from the same database with the raw "
        "driver and json: no ORM, no schemas, no auth, no rate limit; its answers are checked equal to the "
        "app's before each size is timed. `p50 ×`: the app's p50 over the lean route's; `share`: the app's "
        "req/s over the lean route's.",
        "",
    ]
    for backend, data in results["backends"].items():
        lines += [
            f"## {backend}",
            "",
            "| rows | endpoint | app req/s | lean req/s | share | app p50 ms | lean p50 ms | p50 × | app p95 | app p99 "
            "| n (app/lean) | failures |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size in sorted(data["sizes"], key=int):
            for name, result in data["sizes"][size]["endpoints"].items():
                app, lean, ratio = result["app"], result["lean"], result["ratio"]
                lines.append(
                    f"| {int(size):,} | {ENDPOINT_LABELS[name]} | {app['rps']:.0f} | {lean['rps']:.0f} | "
                    f"{ratio['throughput_share']:.0%} | {app['p50_ms']:.2f} | {lean['p50_ms']:.2f} | "
                    f"{ratio['p50_x']:.2f}× | {app['p95_ms']:.2f} | {app['p99_ms']:.2f} | "
                    f"{app['requests']}/{lean['requests']} | {app['failures']}/{lean['failures']} |"
                )
        rss = ", ".join(
            f"{int(size):,}: app {max(record.get('peak_rss_mib', {}).get('app') or [0]):.0f} MiB, lean "
            f"{max(record.get('peak_rss_mib', {}).get('lean') or [0]):.0f} MiB"
            for size, record in sorted(data["sizes"].items(), key=lambda item: int(item[0]))
        )
        seeds = ", ".join(
            f"{int(size):,}: {data['sizes'][size]['seed_seconds']:.1f} s" for size in sorted(data["sizes"], key=int)
        )
        lines += ["", f"Peak RSS of the largest worker: {rss}.", "", f"Seeding: {seeds}.", ""]
    lines += ["## Targets", "", "| backend | target | measured | met |", "|---|---|---|---|"]
    for target in targets:
        met = "yes" if target["met"] else "**no**"
        lines.append(f"| {target['backend']} | {target['target']} | {_format_value(target)} | {met} |")
    missed = [t for t in targets if not t["met"]]
    lines += ["", f"{len(targets) - len(missed)} of {len(targets)} targets met.", ""]
    return "\n".join(lines)


def chart(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    backends = list(results["backends"])
    figure, axes = plt.subplots(1, len(backends), figsize=(6.5 * len(backends), 4.8), squeeze=False, sharey=True)
    for axis, backend in zip(axes[0], backends, strict=True):
        data = results["backends"][backend]
        sizes = sorted(data["sizes"], key=int)
        for name, label in ENDPOINT_LABELS.items():
            values = [data["sizes"][size]["endpoints"].get(name, {}).get("app", {}).get("p50_ms") for size in sizes]
            line = axis.plot([int(s) for s in sizes], values, marker="o", label=label)[0]
            lean = [data["sizes"][size]["endpoints"].get(name, {}).get("lean", {}).get("p50_ms") for size in sizes]
            axis.plot([int(s) for s in sizes], lean, marker=".", linestyle=":", color=line.get_color())
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"{backend}: p50 against rows (dotted: lean reference)")
        axis.set_xlabel("actions in the workspace")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("p50 latency (ms)")
    axes[0][-1].legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_reports(results: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    targets = evaluate_targets(results)
    results = {**results, "targets": targets}
    json_path = directory / "results.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    markdown_path = directory / "results.md"
    markdown_path.write_text(markdown(results, targets))
    paths = [json_path, markdown_path]
    png = chart(results, directory / "latency.png")
    if png is not None:
        paths.append(png)
    return paths


if __name__ == "__main__":
    # Re-render the reports from an existing results.json.
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "results.json"
    data = json.loads(source.read_text())
    data.pop("targets", None)
    for written in write_reports(data, source.parent):
        print(written)
