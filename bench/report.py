"""bench/results/: results.json, results.md (tables and targets) and latency.png."""

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
    """The issue's targets, each with its measured value, its threshold and whether it was met."""
    targets = []
    for backend, data in results["backends"].items():
        sizes = sorted(data["sizes"], key=int)
        if not sizes:
            continue
        small, large = sizes[0], sizes[-1]
        floor_rps = data["floor"]["rps"]

        def endpoint(size, name, _data=data):
            return _data["sizes"][size]["endpoints"][name]

        for name in ("list", "detail", "filtered"):
            ratio = endpoint(large, name)["p50_ms"] / endpoint(small, name)["p50_ms"]
            targets.append(
                _target(backend, f"{name} p50 at {int(large):,} ≤ 1.5× p50 at {int(small):,}", ratio, 1.5, "×", "le")
            )
        for size in sizes:
            ratio = endpoint(size, "deep_page")["p50_ms"] / endpoint(size, "list")["p50_ms"]
            targets.append(
                _target(backend, f"deep page p50 ≤ 1.5× first page p50 at {int(size):,}", ratio, 1.5, "×", "le")
            )
        targets.append(
            _target(
                backend,
                f"summary p50 at {int(large):,} < 100 ms",
                endpoint(large, "summary")["p50_ms"],
                100,
                "ms",
                "lt",
            )
        )
        for size in sizes:
            share = endpoint(size, "list")["rps"] / floor_rps
            targets.append(_target(backend, f"list throughput ≥ 40 % of floor at {int(size):,}", share, 0.40, "", "ge"))
            for name in ("propose", "approve"):
                share = endpoint(size, name)["rps"] / floor_rps
                targets.append(
                    _target(backend, f"{name} throughput ≥ 25 % of floor at {int(size):,}", share, 0.25, "", "ge")
                )
    return targets


def _target(backend, name, value, threshold, unit, comparison) -> dict:
    met = {"le": value <= threshold, "lt": value < threshold, "ge": value >= threshold}[comparison]
    return {"backend": backend, "target": name, "value": value, "threshold": threshold, "unit": unit, "met": met}


def _format_value(target: dict) -> str:
    if target["unit"] == "":
        return f"{target['value']:.0%} (need {target['threshold']:.0%})"
    if target["unit"] == "×":
        return f"{target['value']:.2f}× (need ≤ {target['threshold']}×)"
    return f"{target['value']:.1f} ms (need < {target['threshold']} ms)"


def markdown(results: dict, targets: list[dict]) -> str:
    settings = results["settings"]
    lines = [
        "# Deployment Actions benchmark",
        "",
        f"Started {results['started_at']}, {results.get('total_seconds', 0):.0f} s in all. "
        f"Load: {settings['client']}, {settings['connections']} connections, {settings['duration_s']:.0f} s per "
        f"endpoint after {settings['warmup_s']:.0f} s of warm-up; gunicorn {settings['gunicorn']}; "
        f"rate-limit storage {settings['rate_limit_storage']}. Machine: {results['machine']['cpus']} CPUs, "
        f"load average {results['machine']['load_average_at_start'][0]:.1f} at start, "
        f"{results['machine'].get('load_average_at_end', [0])[0]:.1f} at end.",
        "",
        f"The floor is a bare Flask app under the same gunicorn settings answering a fixed "
        f"{results.get('floor_bytes', 0):,}-byte JSON body (the list page's size). In brackets: req/s as a share "
        f"of the floor's req/s; each latency as a multiple of the floor's same percentile.",
        "",
    ]
    for backend, data in results["backends"].items():
        floor = data["floor"]
        lines += [
            f"## {backend}",
            "",
            f"Floor: {floor['rps']:.0f} req/s, p50 {floor['p50_ms']:.2f} ms, p95 {floor['p95_ms']:.2f} ms, "
            f"p99 {floor['p99_ms']:.2f} ms.",
            "",
            "| rows | endpoint | req/s (share of floor) | p50 ms (× floor) | p95 ms (× floor) | p99 ms (× floor) "
            "| n | failures |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for size in sorted(data["sizes"], key=int):
            for name, result in data["sizes"][size]["endpoints"].items():
                ratio = result["vs_floor"]
                few = " (few samples)" if result["requests"] < 30 else ""
                latencies = " | ".join(f"{result[f'{q}_ms']:.2f} ({ratio[f'{q}_x']:.0f}×)" for q in PERCENTILES)
                lines.append(
                    f"| {int(size):,} | {ENDPOINT_LABELS[name]} | {result['rps']:.0f} ({ratio['rps_share']:.1%}) | "
                    f"{latencies} | {result['requests']}{few} | {result['failures']} |"
                )
        seeds = ", ".join(
            f"{int(size):,}: {data['sizes'][size]['seed_seconds']:.1f} s" for size in sorted(data["sizes"], key=int)
        )
        lines += ["", f"Seeding (rows inserted to reach each size): {seeds}.", ""]
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
            values = [data["sizes"][size]["endpoints"].get(name, {}).get("p50_ms") for size in sizes]
            axis.plot([int(s) for s in sizes], values, marker="o", label=label)
        axis.axhline(data["floor"]["p50_ms"], color="grey", linestyle="--", label="floor")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"{backend}: p50 latency against rows")
        axis.set_xlabel("actions in the workspace")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("p50 latency (ms)")
    axes[0][-1].legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def add_floor_ratios(results: dict) -> None:
    """Each endpoint's figures relative to its backend's floor: req/s share, latency multiples."""
    for data in results["backends"].values():
        floor = data["floor"]
        for record in data["sizes"].values():
            for result in record["endpoints"].values():
                result["vs_floor"] = {
                    "rps_share": result["rps"] / floor["rps"],
                    "p50_x": result["p50_ms"] / floor["p50_ms"],
                    "p95_x": result["p95_ms"] / floor["p95_ms"],
                    "p99_x": result["p99_ms"] / floor["p99_ms"],
                }


def write_reports(results: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    add_floor_ratios(results)
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
