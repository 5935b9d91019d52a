"""``simulate(cm, config, frames)``: timing, function, traffic and energy of one ESE run.

The accelerator runs the LSTM/LSTMP blocks of the compressed model as one stack (ESE runs the
LSTM layers; a linear classifier stays on the host). ``config.channels`` channels each run their own utterance in
lockstep, sharing one weight stream (docs/simulator.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.compress.csc import MAX_GAP
from lstmforge.errors import InputError
from lstmforge.hw.sim.config import SimConfig
from lstmforge.hw.sim.elementwise import op_counts
from lstmforge.hw.sim.energy import frame_energy
from lstmforge.hw.sim.functional import run_block
from lstmforge.hw.sim.report import SimReport
from lstmforge.hw.sim.structure import LayerStructure, PEMatrix
from lstmforge.hw.sim.timing import Timing, simulate_timing

INDEX_BITS = int(MAX_GAP).bit_length()


def lstm_blocks(cm: CompressedModel) -> list[Block]:
    """The model's LSTM blocks in order; they run as one stack (block b feeds block b + 1).

    The stack must be the model's first blocks, one after another; the linear layers after it
    (a classifier) run on the host. Any other layout is refused rather than simulated without
    the blocks in between.
    """
    kinds = [b.kind for b in cm.blocks]
    if "lstm" not in kinds:
        raise InputError(f"the ESE simulator runs LSTM/LSTMP blocks; this model has {kinds}")
    first = stack_end = kinds.index("lstm")
    while stack_end < len(kinds) and kinds[stack_end] == "lstm":
        stack_end += 1
    after = cm.blocks[stack_end:]
    if first > 0:
        culprit, where = cm.blocks[0], "comes before the LSTM stack"
    elif any(b.kind == "lstm" for b in after):
        culprit, where = after[0], "sits between LSTM blocks"
    elif any(b.kind != "linear" for b in after):
        culprit = next(b for b in after if b.kind != "linear")
        where = "follows the LSTM stack but is not a linear layer the host runs"
    else:
        culprit = None
    if culprit is not None:
        raise InputError(
            f"the ESE simulator runs one stack of LSTM blocks from the model's input, then the "
            f"host's linear layers; block {culprit.name!r} ({culprit.kind}) {where} "
            f"(blocks: {kinds})"
        )
    blocks = cm.blocks[:stack_end]
    for before, after in zip(blocks[:-1], blocks[1:], strict=True):
        out = before.config["proj_size"] or before.config["hidden_size"]
        if after.config["input_size"] != out:
            raise InputError(
                f"LSTM blocks {before.name!r} -> {after.name!r} do not chain "
                f"({out} outputs, {after.config['input_size']} inputs)"
            )
    return blocks


def layer_structures(block: Block) -> list[LayerStructure]:
    """The per-layer sparse matrices of an LSTM block, as the PEs stream them."""
    layers = []
    for k in range(block.config["num_layers"]):

        def view(name: str) -> PEMatrix | None:
            m = block.matrices.get(name)
            return None if m is None else PEMatrix(name, m.shape, tuple(m.pes))

        layers.append(
            LayerStructure(
                view(f"weight_ih_l{k}"),
                view(f"weight_hh_l{k}"),
                view(f"weight_hr_l{k}"),
                bool(block.config["peephole"]),
            )
        )
    return layers


def check_fits(cm: CompressedModel, block: Block, config: SimConfig) -> None:
    """Reject a configuration that cannot hold this artifact, naming the field."""
    if config.pes_per_channel != cm.num_pes:
        raise InputError(
            f"config pes_per_channel={config.pes_per_channel}, but the artifact's rows are "
            f"interleaved over {cm.num_pes} PEs (re-run compress with that PE count)"
        )
    weight_bits = max(m.fmt.bits for m in block.matrices.values())
    if weight_bits > config.weight_bits:
        raise InputError(
            f"config weight_bits={config.weight_bits}, the artifact has {weight_bits}-bit weights"
        )
    if config.index_bits < INDEX_BITS:
        raise InputError(
            f"config index_bits={config.index_bits}, the artifact's relative indices need "
            f"{INDEX_BITS} bits"
        )
    pointer_bits = max(m.pointer_bits for m in block.matrices.values())
    if pointer_bits > config.pointer_bits:
        raise InputError(
            f"config pointer_bits={config.pointer_bits}, the artifact's columns need "
            f"{pointer_bits}-bit pointers (column lengths, lstmforge.compress.csc.pointer_bits)"
        )
    act_bits = cm.multiplied_bits(block)
    if act_bits > config.activation_bits:
        raise InputError(
            f"config activation_bits={config.activation_bits}, the artifact uses "
            f"{act_bits}-bit activations"
        )


def _block_states(blocks: list[Block], state: Any, channels: int) -> list:
    """One initial state per LSTM block (engine.run's layout), shapes checked."""
    states = [None] * len(blocks) if state is None else [state] if len(blocks) == 1 else state
    if len(states) != len(blocks):
        raise InputError(f"state: expected one (h, c) per LSTM block ({len(blocks)})")
    checked = []
    for block, given in zip(blocks, states, strict=True):
        if given is None:
            checked.append(None)
            continue
        cfg = block.config
        expect_h = (cfg["num_layers"], channels, cfg["proj_size"] or cfg["hidden_size"])
        expect_c = (cfg["num_layers"], channels, cfg["hidden_size"])
        h, c = (np.asarray(v, dtype=np.float64) for v in given)
        if h.shape != expect_h or c.shape != expect_c:
            raise InputError(
                f"state of block {block.name!r}: expected h {list(expect_h)} and c "
                f"{list(expect_c)}, got {list(h.shape)} and {list(c.shape)}"
            )
        checked.append((h, c))
    return checked


def synthetic_frames(channels: int, frames: int, inputs: int, seed: int = 0) -> np.ndarray:
    """Standard-normal input frames [channels, frames, inputs] (one utterance per channel)."""
    return np.random.default_rng(seed).standard_normal((channels, frames, inputs))


def _model_summary(blocks: list[Block], layers: list[LayerStructure]) -> dict:
    weights = sum(m.shape[0] * m.shape[1] for ly in layers for m in ly.matrices)
    nonzeros = sum(m.nonzeros for b in blocks for m in b.matrices.values())
    return {
        "blocks": [b.name for b in blocks],
        "layers": len(layers),
        "input_size": layers[0].w_ih.shape[1],
        "hidden_size": layers[0].hidden_size,
        "proj_size": layers[0].output_size if layers[0].w_hr is not None else 0,
        "peephole": layers[0].peephole,
        "dense_weights": weights,
        "nonzero_weights": nonzeros,
        "density": nonzeros / weights,
        "num_pes": layers[0].w_ih.num_pes,
    }


def _energy(
    timing: Timing, layers: list[LayerStructure], config: SimConfig, frames: int, useful: float
) -> dict[str, float]:
    """Energy of one frame on all channels (one weight stream feeds every channel)."""
    channels = config.channels
    entries = float(sum(timing.pe_busy["useful"] + timing.pe_busy["padding"])) / frames
    columns = sum(m.shape[1] for ly in layers for m in ly.matrices) * layers[0].w_ih.num_pes
    io_bits = (layers[0].w_ih.shape[1] + layers[-1].output_size) * config.activation_bits
    weight_bytes = timing.weight_bytes_per_frame
    if config.weight_storage == "onchip":
        weight_bytes /= frames  # loaded once per utterance
    return frame_energy(
        entries=entries * channels,
        useful_macs=useful * channels,
        columns_per_pe=columns * channels,
        cells=sum(ly.hidden_size for ly in layers) * channels,
        elementwise_ops=op_counts(layers[0].peephole),
        dram_bits=8 * weight_bytes + io_bits * channels,
        weight_bits=config.weight_bits,
        index_bits=config.index_bits,
        pointer_bits=config.pointer_bits,
        activation_bits=config.activation_bits,
    )


def simulate(
    cm: CompressedModel,
    config: SimConfig,
    frames: int | np.ndarray,
    functional: bool = True,
    state: Any = None,
) -> SimReport:
    """Simulate ``frames`` time steps of the model's LSTM stack on the accelerator ``config``.

    ``frames``: a number of frames (inputs are then standard-normal, seed 0, one utterance per
    channel) or the float inputs themselves, [frames, inputs] or [channels, frames, inputs].
    ``functional=False`` skips computing the outputs (timing only, e.g. for sweeps).
    ``state``: the initial recurrent state in :func:`lstmforge.engine.run`'s layout (``(h, c)``
    [L, channels, *] for one LSTM block, a list of them for several); None: zeros. The state
    does not change the timing.
    """
    blocks = lstm_blocks(cm)
    for chosen in blocks:
        check_fits(cm, chosen, config)
    layers = [layer for chosen in blocks for layer in layer_structures(chosen)]
    inputs = layers[0].w_ih.shape[1]
    if isinstance(frames, (int, np.integer)):
        if frames < 1:
            raise InputError(f"frames must be >= 1, got {frames}")
        x = synthetic_frames(config.channels, int(frames), inputs)
    else:
        x = np.asarray(frames, dtype=np.float64)
        x = x[None] if x.ndim == 2 else x
        if x.ndim != 3 or x.shape[-1] != inputs or x.shape[1] < 1:
            raise InputError(
                f"frames: expected [frames, {inputs}] or [channels, frames, {inputs}], "
                f"got shape {list(np.shape(frames))}"
            )
        if not np.all(np.isfinite(x)):
            raise InputError("frames: expected finite numbers, found NaN or infinity")
        if x.shape[0] > config.channels:
            raise InputError(
                f"frames: {x.shape[0]} utterances but the config has {config.channels} channels"
            )
    count = x.shape[1]
    model_bytes = (
        sum(
            pe.entries * config.entry_bits + m.shape[1] * config.pointer_bits  # a length per column
            for ly in layers
            for m in ly.matrices
            for pe in m.pes
        )
        / 8
    )
    if config.weight_storage == "onchip" and model_bytes > config.onchip_weight_kib * 1024:
        raise InputError(
            f"config onchip_weight_kib={config.onchip_weight_kib:g}: the compressed weights "
            f"need {model_bytes / 1024:.1f} KiB"
        )
    timing = simulate_timing(layers, config, count)
    outputs, finals, saturations = None, [], {}
    if functional:
        outputs = x
        for chosen, initial in zip(blocks, _block_states(blocks, state, x.shape[0]), strict=True):
            outputs, final, counter = run_block(cm, chosen, outputs, initial)
            finals.append(final)
            saturations.update({site: int(n) for site, n in counter.items() if n})

    clock_hz = config.clock_mhz * 1e6
    steady = np.diff(timing.frame_done)
    per_frame = float(steady.mean()) if steady.size else float(timing.frame_done[0])
    frame_s = per_frame / clock_hz
    summary = _model_summary(blocks, layers)
    useful = float(timing.pe_busy["useful"].sum()) / count
    pe_cycles = {**timing.pe_busy, **timing.pe_stalls}
    total_pe_cycles = timing.total_cycles * layers[0].w_ih.num_pes
    weight_bytes = timing.weight_bytes_per_frame
    io_bytes = (inputs + layers[-1].output_size) * config.activation_bits / 8
    energy = _energy(timing, layers, config, count, useful)
    return SimReport(
        config=config.to_dict(),
        model=summary,
        frames=count,
        channels=config.channels,
        cycles_per_utterance=timing.total_cycles,
        cycles_per_frame=per_frame,
        first_frame_cycles=int(timing.frame_done[0]),
        latency_us_per_frame=per_frame / clock_hz * 1e6,
        latency_us_per_utterance=timing.total_cycles / clock_hz * 1e6,
        gops_sparse=2 * useful * config.channels / frame_s / 1e9,
        gops_dense_equivalent=2 * summary["dense_weights"] * config.channels / frame_s / 1e9,
        frames_per_second=config.channels / frame_s,
        pe_utilisation_mean=float(timing.pe_busy["useful"].sum() / total_pe_cycles),
        pe_utilisation=(timing.pe_busy["useful"] / timing.total_cycles).tolist(),
        cycle_breakdown={k: float(v.sum() / total_pe_cycles) for k, v in pe_cycles.items()},
        stall_cycles_per_pe={k: v.tolist() for k, v in timing.pe_stalls.items()},
        memory={
            "weight_storage_bytes": model_bytes,
            "weight_bytes_per_frame": weight_bytes
            if config.weight_storage == "stream"
            else model_bytes / count,
            "activation_bytes_per_frame": io_bytes * config.channels,
            "bandwidth_utilisation": (
                weight_bytes / frame_s / (config.memory_bandwidth_gbs * 1e9)
                if config.weight_storage == "stream"
                else 0.0
            ),
        },
        buffers={
            "fifo_depth": config.fifo_depth,
            "fifo_max_occupancy": timing.fifo_max,
            "fifo_mean_occupancy": timing.fifo_mean,
            "weight_buffer_peak_bytes_per_pe": timing.weight_buffer_peak_bytes,
        },
        energy_j_per_frame={**energy, "total": sum(energy.values())},
        power_w=sum(energy.values()) / frame_s,
        saturations=saturations,
        timeline=[dataclasses.asdict(i) for i in timing.timeline],
        timeline_frame=timing.timeline_frame,
        outputs=outputs,
        final_state=(finals[0] if len(finals) == 1 else finals) if functional else None,
    )
