"""The element-wise unit (ESE §5: ElemMul/ElemAdd, sigmoid/tanh) against the engine's cell."""

import numpy as np
import pytest
import torch

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from lstmforge.compress import compress_model  # noqa: E402
from lstmforge.engine.activation_units import ActivationConfig  # noqa: E402
from lstmforge.engine.integer_datapath import IntegerDatapath  # noqa: E402
from lstmforge.errors import InputError  # noqa: E402
from lstmforge.hw.rtl.elementwise_unit import CellFormats, ElementwiseUnit  # noqa: E402
from lstmforge.hw.rtl.pipeline_simulation import run_pipeline  # noqa: E402
from lstmforge.nn import LSTM  # noqa: E402

HIDDEN = 8


def _compressed(peephole: bool, proj_size: int, activation: ActivationConfig):
    torch.manual_seed(0)
    model = LSTM(3, HIDDEN, proj_size=proj_size, peephole=peephole)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return compress_model(model, density=0.5, num_pes=2, activation=activation)


@pytest.mark.parametrize(
    ("peephole", "proj_size", "activation"),
    [
        (True, 0, ActivationConfig()),  # peephole LSTM, interpolated 1024-entry LUTs
        (False, 4, ActivationConfig(kind="plan")),  # LSTMP (hidden in G), PLAN units
        (True, 0, ActivationConfig(index_bits=8, interpolate=False)),
    ],
    ids=["peephole-lut", "lstmp-plan", "peephole-lut256"],
)
def test_cell_matches_engine(peephole, proj_size, activation):
    cm = _compressed(peephole, proj_size, activation)
    block = cm.blocks[0]
    pre = cm.activation.input_format
    cell = block.formats["l0.cell"]
    hidden_key = "gate" if proj_size else "l0.output"
    datapath = IntegerDatapath(cm, block, backend="reference")

    rng = np.random.default_rng(1)
    batch = 30
    # partial sums up to three P codes wide; a third of them small, so both the saturating and
    # the interior regions of every unit are reached; cell states over the whole C range
    partial = rng.integers(-3 * 2**15, 3 * 2**15, size=(batch, 4 * HIDDEN))
    partial[: batch // 3] //= 32
    c_prev = rng.integers(cell.min_code, cell.max_code + 1, size=(batch, HIDDEN))
    # two elements driven into the cell clamps: i = f = 1 with g = +1 / -1 on a full cell
    top = 3 * 2**15 - 1
    partial[-1], c_prev[-1] = top, cell.max_code
    partial[-2], c_prev[-2] = top, cell.min_code
    partial[-2, 2 * HIDDEN : 3 * HIDDEN] = -top
    m_expected, c_expected = datapath.cell(partial, c_prev, 0, hidden_key)

    peepholes = {
        name: block.vectors[f"weight_{name}_l0"].fmt
        for name in ("ci", "cf", "co")
        if f"weight_{name}_l0" in block.vectors
    }
    assert bool(peepholes) == peephole
    formats = CellFormats(
        cell=cell,
        hidden=datapath.fmt(hidden_key),
        partial_bits=pre.bits + 2,
        peepholes=peepholes,
    )
    unit = ElementwiseUnit(formats, cm.activation_units())
    inputs = []
    for n in range(batch):
        for h in range(HIDDEN):
            element = {gate: int(partial[n, k * HIDDEN + h]) for k, gate in enumerate("ifgo")}
            element["c"] = int(c_prev[n, h])
            for name in peepholes:
                element[f"w_{name}"] = int(block.vectors[f"weight_{name}_l0"].codes[h])
            inputs.append(element)
    outputs = run_pipeline(unit, inputs)
    assert len(outputs) == len(inputs)
    m_got = np.array([o["m"] for o in outputs]).reshape(batch, HIDDEN)
    c_got = np.array([o["c"] for o in outputs]).reshape(batch, HIDDEN)
    np.testing.assert_array_equal(c_got, c_expected)
    np.testing.assert_array_equal(m_got, m_expected)
    assert np.all(c_expected[-1] == cell.max_code) and np.all(c_expected[-2] == cell.min_code)


def test_unknown_peephole_is_rejected():
    cm = _compressed(True, 0, ActivationConfig())
    cell = cm.blocks[0].formats["l0.cell"]
    with pytest.raises(InputError, match="peepholes"):
        CellFormats(cell=cell, hidden=cell, partial_bits=18, peepholes={"cx": cell})


def _first_output_cycle(unit) -> int:
    """Cycles from a single input to its valid output."""
    seen = {}

    async def testbench(ctx):
        ctx.set(unit.x.valid, 1)
        await ctx.tick()
        ctx.set(unit.x.valid, 0)
        for cycle in range(1, 64):
            if ctx.get(unit.y.valid):
                seen["cycle"] = cycle
                return
            await ctx.tick()

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return seen["cycle"]


@pytest.mark.parametrize(("kind", "latency"), [("lut", 8), ("plan", 6)])
def test_latency_is_as_documented(kind, latency):
    cm = _compressed(True, 0, ActivationConfig(kind=kind))
    cell = cm.blocks[0].formats["l0.cell"]
    unit = ElementwiseUnit(
        CellFormats(cell=cell, hidden=cell, partial_bits=18), cm.activation_units()
    )
    assert unit.latency == latency
    assert _first_output_cycle(unit) == latency
