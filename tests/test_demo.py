"""`lstmforge demo` end to end, at a tiny size (slow: trains a model)."""

import json

import pytest

from lstmforge.cli import main
from lstmforge.compress import load


@pytest.mark.slow
def test_tiny_demo_writes_report_and_agreeing_back_ends(tmp_path):
    out = tmp_path / "demo"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "demo",
                "--out",
                str(out),
                "--utterances",
                "20",
                "--epochs",
                "1",
                "--pes",
                "4",
                "--retrain-epochs",
                "1",
                "--prune-steps",
                "1",
                "--json",
                str(tmp_path / "demo.json"),
            ]
        )
    assert exc.value.code == 0
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["simulator_matches_engine"] is True
    assert set(summary["per"]) == {"dense_float", "pruned_float", "pruned_integer"}
    assert all(isinstance(v, float) and v >= 0 for v in summary["per"].values())
    assert len(summary["retraining"]) == 1
    for name in ("balanced", "unbalanced"):
        cm = load(out / f"speech-{name}.lfz")
        assert cm.num_pes == 4
        sim = summary["simulation"][name]
        assert 0 < sim["pe_utilisation_mean"] <= 1 and sim["cycles_per_frame"] > 0
        assert sim["model"]["density"] == pytest.approx(0.25, abs=0.01)
    page = (out / "report.html").read_text()
    assert "Phone error rate" in page and page.count("data:image/png;base64") == 4
