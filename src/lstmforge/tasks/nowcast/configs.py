"""Named model configurations for nowcasting (Shi et al., NIPS 2015) and the model factory.

Paper configurations (Moving MNIST, Table 1; frames reshaped into 4 x 4 patches:
64 x 64 x 1 -> 16 x 16 x 16). "ConvLSTM(kx)-k1-C1-k2-C2..." names the input-to-state kernel
(in parentheses) and, per layer, the state-to-state kernel and the hidden channels:

* ``convlstm-5x5-256``             ConvLSTM(5x5)-5x5-256
* ``convlstm-5x5-128-128``         ConvLSTM(5x5)-5x5-128-5x5-128
* ``convlstm-5x5-128-64-64``       ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64 (the paper's best, 3670.85)
* ``convlstm-9x9-1x1-128-128``     ConvLSTM(9x9)-1x1-128-1x1-128 (4782.84)
* ``convlstm-9x9-1x1-128-64-64``   ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64 (4231.50)
* ``fc-lstm-2048-2048``            FC-LSTM-2048-2048 (4832.49)

In the (9x9)-1x1 models every input-to-state convolution is 9 x 9 (encoder layer 0 on the
frames, every other layer on the hidden states of the layer below) and every state-to-state
one 1 x 1: that reading gives exactly the paper's parameter counts, 11,550,224 and 8,830,480
(with per-channel peepholes, as the 5x5 rows; ``docs/nowcasting.md``).

Radar (Sec. 4.2): ``radar-convlstm-3x3-64-64``, two 64-channel layers with 3 x 3 kernels on
2 x 2 patches (100 x 100 -> 50 x 50 x 4).

CPU-sized configurations (``small-*``) keep the structure with fewer channels and 4 x 4 (radar:
4 x 4) patches; ``tiny-*`` ones are for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lstmforge.errors import InputError
from lstmforge.nn import EncoderForecaster, FCForecaster


@dataclass(frozen=True)
class ConvArch:
    """A ConvLSTM encoder-forecaster: channels per layer, state-to-state kernel size, patch
    size, peepholes, input-to-state kernel size (None: the state-to-state size)."""

    hidden: tuple[int, ...]
    kernel: int
    patch: int
    peephole: bool | str = True
    input_kernel: int | None = None


@dataclass(frozen=True)
class FCArch:
    """An FC-LSTM encoder-forecaster on flattened frames: LSTM size per layer."""

    hidden: tuple[int, ...]


ARCHS: dict[str, ConvArch | FCArch] = {
    "convlstm-5x5-256": ConvArch((256,), 5, 4),
    "convlstm-5x5-128-128": ConvArch((128, 128), 5, 4),
    "convlstm-5x5-128-64-64": ConvArch((128, 64, 64), 5, 4),
    "convlstm-9x9-1x1-128-128": ConvArch((128, 128), 1, 4, input_kernel=9),
    "convlstm-9x9-1x1-128-64-64": ConvArch((128, 64, 64), 1, 4, input_kernel=9),
    "fc-lstm-2048-2048": FCArch((2048, 2048)),
    "radar-convlstm-3x3-64-64": ConvArch((64, 64), 3, 2),
    "small-convlstm-5x5-32-16-16": ConvArch((32, 16, 16), 5, 4),
    "small-convlstm-5x5-16-8-8": ConvArch((16, 8, 8), 5, 4),
    "small-convlstm-3x3-32-32": ConvArch((32, 32), 3, 4),
    "small-convlstm-3x3-16-16": ConvArch((16, 16), 3, 4),
    "small-fc-lstm-256-256": FCArch((256, 256)),
    "tiny-convlstm": ConvArch((4,), 3, 4),
    "tiny-fc-lstm": FCArch((16,)),
}


def get_arch(name: str) -> ConvArch | FCArch:
    """The configuration called ``name``."""
    if name not in ARCHS:
        raise InputError(
            f"--arch: unknown architecture {name!r}; expected one of {', '.join(ARCHS)}"
        )
    return ARCHS[name]


PEEPHOLES = {"pixel": "pixel", "channel": "channel", "none": False}


def build_model(
    name: str,
    frame_size: int,
    channels: int = 1,
    loss: str = "bce",
    peephole: str | None = None,
) -> nn.Module:
    """The model for ``name`` on frames of ``channels x frame_size x frame_size`` (unpatched).

    ``loss`` (the training loss) tells an FC-LSTM whether its output is a logit (``bce``) or
    the frame itself, which decides the prediction it feeds back. ``peephole`` replaces a
    ConvLSTM configuration's peepholes: ``"pixel"`` (Shi et al.'s Hadamard peepholes, one
    weight per position and channel), ``"channel"`` (one weight per channel) or ``"none"``.
    """
    arch = get_arch(name)
    if peephole is not None and peephole not in PEEPHOLES:
        raise InputError(f"--peephole: expected one of {', '.join(PEEPHOLES)}, got {peephole!r}")
    if isinstance(arch, FCArch):
        if peephole is not None:
            raise InputError(f"--peephole: only for ConvLSTM models, not {name}")
        output = "logits" if loss == "bce" else "linear"
        return FCForecaster((channels, frame_size, frame_size), arch.hidden, output)
    if frame_size % arch.patch:
        raise InputError(
            f"--frame-size {frame_size} is not divisible by the patch size {arch.patch} of {name}"
        )
    side = frame_size // arch.patch
    return EncoderForecaster(
        channels * arch.patch**2,
        arch.hidden,
        arch.kernel,
        frame_size=(side, side),
        peephole=arch.peephole if peephole is None else PEEPHOLES[peephole],
        input_kernel_size=arch.input_kernel,
    )


def patch_size(name: str) -> int:
    """Patch size the model ``name`` works on (1: whole frames, for FC-LSTM)."""
    arch = get_arch(name)
    return arch.patch if isinstance(arch, ConvArch) else 1
