"""`lstmforge export-c`: the generated C99 computes the engine's integers bit for bit.

Each model is compressed, saved, exported through the command line, compiled with the system C
compiler (``-std=c99 -Wall -Wextra -pedantic -Werror -O2``) together with the generated example
program, and run on input codes that include the extremes of the input format. The oracle is
the engine's golden per-PE reference loop on the same codes.
"""

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from lstmforge.cli import main
from lstmforge.compress import compress_model
from lstmforge.compress.artifact import SparseMatrix
from lstmforge.engine import run
from lstmforge.engine.activation_units import ActivationConfig
from lstmforge.engine.fixed_point import QFormat, SaturationCounter, dequantize
from lstmforge.errors import InputError
from lstmforge.export import export_c
from lstmforge.export.c_sources import pack_rel_index
from lstmforge.nn import LSTM
from lstmforge.nn.convlstm import ConvLSTM

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
FRAMES = 20


class _Stack(nn.Module):
    """An LSTM/LSTMP stack with a linear output layer."""

    def __init__(self, proj: int, peephole: bool) -> None:
        super().__init__()
        self.rnn = LSTM(5, 12, num_layers=2, proj_size=proj, peephole=peephole)
        self.head = nn.Linear(proj or 12, 4)

    def forward(self, x, state=None):
        y, state = self.rnn(x, state)
        return self.head(y), state


def _saturating_input_products(cm):
    """16-bit weights of one sign per row in W_ih of layer 0: with inputs at the extremes the
    32-bit accumulator saturates, and the column order of the additions matters."""
    matrix = cm.blocks[0].matrices["weight_ih_l0"]
    rows, cols = matrix.shape
    signs = np.where(np.arange(cols) < cols - 2, 1, -1)
    codes = np.tile(signs * 32767, (rows, 1))
    cm.blocks[0].matrices["weight_ih_l0"] = SparseMatrix.from_codes(
        codes, QFormat(16, 16), cm.num_pes, matrix.source_shape
    )


def _shifted_head_input(cm):
    """The head reads a format two fractional bits coarser than the stack writes."""
    head = cm.blocks[1]
    fmt = head.formats["input"]
    head.formats["input"] = QFormat(fmt.bits, fmt.frac - 2)


def _plain_lstm():
    return LSTM(5, 10, num_layers=2, proj_size=0, peephole=False, bias=False)


CASES = {
    # LSTMP, peepholes, output layer, interpolated 1024-entry LUTs
    "lstmp": (lambda: _Stack(6, True), ActivationConfig(), None),
    # plain LSTM, no peepholes, no bias, no output layer, 256-entry LUTs without interpolation
    "lstm": (_plain_lstm, ActivationConfig(index_bits=8, interpolate=False), None),
    # PLAN units, a saturating accumulator, a requantization between the blocks
    "lstmp_plan": (
        lambda: _Stack(6, True),
        ActivationConfig(kind="plan"),
        lambda cm: (_saturating_input_products(cm), _shifted_head_input(cm)),
    ),
}


def _input_codes(fmt: QFormat) -> np.ndarray:
    rng = np.random.default_rng(3)
    codes = rng.integers(-(1 << 12), 1 << 12, size=(FRAMES, 5))
    codes[4] = fmt.max_code
    codes[5] = fmt.min_code
    codes[6, ::2] = fmt.max_code
    codes[12:15] = rng.integers(fmt.min_code, fmt.max_code + 1, size=(3, 5))
    return codes


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


@pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH")
@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_c_equals_engine_bit_for_bit(case, tmp_path, capsys):
    make_model, activation, modify = CASES[case]
    torch.manual_seed(0)
    model = make_model().eval()
    calibration = torch.randn(2, 8, 5, generator=torch.Generator().manual_seed(1))
    cm = compress_model(
        model, density=0.5, num_pes=3, calibration=calibration, activation=activation
    )
    if modify is not None:
        modify(cm)
    artifact = cm.save(tmp_path / f"{case}.lfz")
    out = tmp_path / "c"
    code, printed = _cli(
        ["export-c", str(artifact), "--out", str(out), "--json", str(tmp_path / "export.json")],
        capsys,
    )
    assert code == 0, printed.err
    summary = json.loads((tmp_path / "export.json").read_text())
    assert summary["prefix"] == case and summary["num_pes"] == 3
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])
    assert summary["memory_bytes"]["total"] == sum(
        v for k, v in summary["memory_bytes"].items() if k != "total"
    )

    binary = tmp_path / "example"
    sources = [str(out / f"{case}.c"), str(out / f"{case}_example.c")]
    flags = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2"]
    build = subprocess.run(
        [CC, *flags, *sources, "-o", str(binary)], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    c_source = (out / f"{case}.c").read_text() + (out / f"{case}_model.h").read_text()
    assert "float" not in c_source and "double" not in c_source and "malloc" not in c_source

    fin, fout = cm.blocks[0].formats["input"], cm.blocks[-1].output_format
    codes = _input_codes(fin)
    counter = SaturationCounter()
    y, _ = run(cm, dequantize(codes, fin)[None], backend="reference", counter=counter)
    expected = np.ldexp(y[0], fout.frac)
    assert np.array_equal(expected, np.round(expected))  # exact codes
    text = "\n".join(" ".join(map(str, row)) for row in codes) + "\n"
    ran = subprocess.run([str(binary)], input=text, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    got = np.array([[int(v) for v in line.split()] for line in ran.stdout.splitlines()])
    np.testing.assert_array_equal(got, expected.astype(np.int64))
    if case == "lstmp_plan":  # the case exercises the saturating accumulator
        assert counter["rnn.weight_ih_l0.accumulate"] > 0


def test_rel_index_packing_two_per_byte():
    packed = pack_rel_index(np.array([1, 2, 15, 0, 7], dtype=np.uint8))
    assert packed.tolist() == [0x21, 0x0F, 0x07]


@pytest.fixture()
def tiny_artifact(tmp_path):
    torch.manual_seed(0)
    return compress_model(LSTM(4, 8, proj_size=4), density=0.5, num_pes=2).save(
        tmp_path / "tiny.lfz"
    )


def _one_line_error(code, printed, needle):
    assert code == 2
    assert printed.err.strip().count("\n") == 0 and needle in printed.err


def test_missing_artifact_exits_2(tmp_path, capsys):
    out = tmp_path / "c"
    code, printed = _cli(["export-c", str(tmp_path / "none.lfz"), "--out", str(out)], capsys)
    _one_line_error(code, printed, "none.lfz")
    assert not out.exists()


def test_corrupt_artifact_exits_2_and_writes_nothing(tiny_artifact, tmp_path, capsys):
    data = tiny_artifact.read_bytes()
    tiny_artifact.write_bytes(data[: len(data) // 2])
    out = tmp_path / "c"
    code, printed = _cli(["export-c", str(tiny_artifact), "--out", str(out)], capsys)
    _one_line_error(code, printed, "tiny.lfz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.lfz"]


def test_convlstm_and_bad_prefix_are_rejected(tiny_artifact, tmp_path, capsys):
    torch.manual_seed(0)
    conv = compress_model(ConvLSTM(1, 2, 3, frame_size=(4, 4)), density=0.5, num_pes=2)
    conv_path = conv.save(tmp_path / "conv.lfz")
    code, printed = _cli(["export-c", str(conv_path), "--out", str(tmp_path / "c")], capsys)
    _one_line_error(code, printed, "export-c supports LSTM/LSTMP artifacts")
    code, printed = _cli(
        ["export-c", str(tiny_artifact), "--out", str(tmp_path / "c"), "--prefix", "9bad-name"],
        capsys,
    )
    _one_line_error(code, printed, "--prefix")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.lfz", "tiny.lfz"]


def test_export_into_an_existing_directory_replaces_only_its_files(tiny_artifact, tmp_path, capsys):
    out = tmp_path / "c"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "tiny.c").write_text("old")
    code, printed = _cli(["export-c", str(tiny_artifact), "--out", str(out)], capsys)
    assert code == 0, printed.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["keep.txt", "tiny.c", "tiny.h", "tiny_example.c", "tiny_model.h"]
    assert "tiny_step" in (out / "tiny.c").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "tiny.lfz"]


def test_formats_wider_than_16_bits_are_rejected(tmp_path):
    torch.manual_seed(0)
    cm = compress_model(LSTM(4, 8), density=0.5, num_pes=2, activation_bits=20)
    with pytest.raises(InputError, match="at most 16"):
        export_c(cm, tmp_path / "c", "wide", "wide.lfz")
    assert list(tmp_path.iterdir()) == []
