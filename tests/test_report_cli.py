"""`lstmforge report`: one HTML page from the JSON outputs of the other commands.

The simulator and export-c outputs and the compression figures are real (a tiny LSTMP); the
others are small objects of the shapes those commands write.
"""

import json

import pytest
import torch

from lstmforge.cli import main
from lstmforge.compress import compress_model
from lstmforge.export import export_c
from lstmforge.hw import load_preset, simulate
from lstmforge.io import write_json
from lstmforge.nn import LSTM
from lstmforge.report.page import write_report
from lstmforge.report.runs import Run, kind_of


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """One JSON file per kind, as the commands write them."""
    root = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    cm = compress_model(LSTM(6, 16, proj_size=8), density=0.4, num_pes=4)
    config = load_preset("ese-ku060").replace(pes_per_channel=4, channels=2)
    sim = simulate(cm, config, 3).to_dict()
    payloads = {
        "simulate.json": sim | {"config_source": "preset ese-ku060"},
        "export.json": export_c(cm, root / "c", "tiny", "tiny.lfz"),
        "compress.json": {  # the figures compress computes, as `compress --json` writes them
            "task": "speech",
            "density": 0.4,
            "num_pes": 4,
            "footprint": cm.report["footprint"],
            "pe_load": cm.report["pe_load"],
            "activation_unit_error": cm.report["activation_unit_error"],
            "metrics": {"dense_float": {"per": 30.0}, "pruned_integer": {"per": 31.5}},
        },
        "sweep.json": {
            "points": [
                {
                    "density": 0.4,
                    "pes_per_channel": n,
                    "memory_bandwidth_gbs": 5.0,
                    "latency_us_per_frame": 40.0 / n,
                    "pe_utilisation": 0.7,
                }
                for n in (2, 4)
            ],
            "pareto_front": [],
        },
        "speech.json": {
            "per": 31.5,
            "substitution_rate": 20.0,
            "deletion_rate": 8.0,
            "insertion_rate": 3.5,
            "reference_phones": 900.0,
            "utterances": 24.0,
        },
        "emg.json": {
            "summary": {m: 0.5 for m in ("cc", "nrmse", "rmse", "r2", "mae")}
            | {f"{m}_std": 0.1 for m in ("cc", "nrmse", "rmse", "r2", "mae")},
            "subjects": {"1": {m: 0.5 for m in ("cc", "nrmse", "rmse", "r2", "mae")}},
        },
        "nowcast.json": {
            "arch": "small-convlstm",
            "dataset": "radar",
            "results": {
                name: {"csi": 0.4, "mse": 2.0, "per_lead": {"csi": [0.6, 0.4, 0.2]}}
                for name in ("model", "persistence")
            },
        },
        "demo.json": {
            "seconds": 12.0,
            "training": {"epochs": 2, "history": [{"epoch": 0, "train_loss": 3.0}]},
            "per": {"dense_float": 30.0, "pruned_float": 31.0, "pruned_integer": 31.5},
            "density": 0.25,
            "simulator_matches_engine": True,
            "pe_nonzeros": {"balanced": [10, 10, 11, 10], "unbalanced": [6, 14, 9, 12]},
            "simulation": {"balanced": sim, "unbalanced": sim},
        },
    }
    paths = {}
    for name, payload in payloads.items():
        paths[name] = write_json(root / name, payload)
    return paths


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


def test_every_kind_is_recognised(outputs):
    kinds = {name: kind_of(json.loads(path.read_text())) for name, path in outputs.items()}
    assert kinds == {
        "simulate.json": "simulate",
        "export.json": "export-c",
        "compress.json": "compress",
        "sweep.json": "sweep",
        "speech.json": "speech-evaluate",
        "emg.json": "emg-evaluate",
        "nowcast.json": "nowcast-evaluate",
        "demo.json": "demo",
    }


def test_report_of_all_outputs(outputs, tmp_path, capsys):
    page = tmp_path / "out" / "report.html"
    code, printed = _cli(["report", *map(str, outputs.values()), "--out", str(page)], capsys)
    assert code == 0, printed.err
    text = page.read_text()
    for name in outputs:
        assert f"<h2>{name}: " in text
    for heading in ("Phone error rate", "Load balance", "Design space", "Nowcasting", "C export"):
        assert heading in text
    assert "Simulated accelerator (preset ese-ku060: 2 channels x 4 PEs" in text
    # simulate: 2, compress: 1, sweep: 1, nowcast: 1, demo: 4
    assert text.count("data:image/png;base64") == 9
    assert sorted(p.name for p in page.parent.iterdir()) == ["report.html"]


def test_demo_summary_gives_the_demo_sections(outputs, tmp_path):
    summary = json.loads(outputs["demo.json"].read_text())
    figures = tmp_path / "figures"
    page = write_report(
        [Run("summary.json", "demo", summary)], tmp_path / "r.html", "demo", figures
    )
    text = page.read_text()
    assert "<h2>Phone error rate (test split)</h2>" in text
    assert text.count("data:image/png;base64") == 4
    assert sorted(p.name for p in figures.iterdir()) == [
        "pe_load.png",
        "pe_utilisation.png",
        "timeline.png",
        "training.png",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"hello": 1}', "not the JSON output of an lstmforge command"),
        ("[1, 2]", "not the JSON output of an lstmforge command"),
        (
            '{"points": [{"density": 0.1}], "pareto_front": []}',
            "sweep JSON with a missing or malformed field",
        ),
        (  # a hand-edited profile of no utterances: a section that would divide by 0
            '{"seconds": {"lstm_layer_0": 1.0}, "share_percent": {"lstm_layer_0": 100.0},'
            ' "lstm_share_percent": 100.0, "total_seconds": 1.0, "real_time_factor": 0.1,'
            ' "utterances": 0}',
            "speech-profile JSON with a missing or malformed field (ZeroDivisionError",
        ),
    ],
)
def test_bad_json_exits_2_naming_the_file(outputs, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    page = tmp_path / "report.html"
    code, printed = _cli(
        ["report", str(outputs["speech.json"]), str(bad), "--out", str(page)], capsys
    )
    assert code == 2
    assert printed.err.strip().count("\n") == 0
    assert "bad.json" in printed.err and message in printed.err
    assert not page.exists()


def test_missing_json_exits_2(tmp_path, capsys):
    code, printed = _cli(
        ["report", str(tmp_path / "none.json"), "--out", str(tmp_path / "r.html")], capsys
    )
    assert code == 2 and "none.json" in printed.err
    assert not (tmp_path / "r.html").exists()


def test_missing_emg_scores_show_as_n_a(tmp_path, capsys):
    """A correlation of constant outputs is NaN, which JSON writes as null."""
    scores = {m: None for m in ("cc", "nrmse", "rmse", "r2", "mae")}
    data = {"summary": scores | {f"{m}_std": None for m in scores}, "subjects": {"1": scores}}
    source = tmp_path / "emg.json"
    source.write_text(json.dumps(data))
    page = tmp_path / "report.html"
    code, printed = _cli(["report", str(source), "--out", str(page)], capsys)
    assert code == 0, printed.err
    assert "n/a ± n/a" in page.read_text()


def test_paths_with_brackets_and_a_directory_as_out(outputs, tmp_path, capsys):
    source = tmp_path / "exp[lr]" / "speech.json"
    source.parent.mkdir()
    source.write_text(outputs["speech.json"].read_text())
    page = tmp_path / "a[/x]" / "r.html"
    code, printed = _cli(["report", str(source), "--out", str(page)], capsys)
    assert code == 0 and page.is_file() and "a[/x]" in printed.out.replace("\n", "")
    missing = tmp_path / "exp[lr]" / "missing.json"
    code, printed = _cli(["report", str(missing), "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2 and "exp[lr]" in printed.err
    code, printed = _cli(["report", str(source), "--out", str(tmp_path)], capsys)
    assert code == 2 and "a directory" in printed.err
