"""lstmforge.nn.ConvLSTM against a naive scipy reference (Shi et al. 2015, eq. 3) and its contract."""

import numpy as np
import pytest
import torch

from lstmforge.errors import InputError
from lstmforge.nn import ConvLSTM
from reference_cells import reference_convlstm, reference_convlstm_steps

FRAME = (5, 6)


def make_convlstm(in_channels=2, hidden=(3,), kernels=(3,), peephole=True, bias=True, **kwargs):
    torch.manual_seed(0)
    module = ConvLSTM(
        in_channels,
        list(hidden),
        list(kernels),
        num_layers=len(hidden),
        frame_size=FRAME,
        peephole=peephole,
        bias=bias,
        **kwargs,
    ).double()
    return module


def random_states(module: ConvLSTM, batch: int, frame=FRAME):
    g = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(batch, hc, *frame, generator=g, dtype=torch.float64),
            torch.randn(batch, hc, *frame, generator=g, dtype=torch.float64),
        )
        for hc in module.hidden_channels
    ]


def numpy_params(module: ConvLSTM) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy() for name, p in module.named_parameters()}


def numpy_states(states):
    return [(h.numpy(), c.numpy()) for h, c in states]


LAYOUTS = {
    "one layer": dict(hidden=(3,), kernels=(3,)),
    "two layers, per-layer sizes": dict(hidden=(3, 2), kernels=(3, 5)),
    "three layers, 1x1 kernel": dict(hidden=(2, 4, 1), kernels=(5, 1, 3)),
    "input 5x5, state 1x1": dict(hidden=(3, 2), kernels=(1, 1), input_kernel_size=5),
    "input/state mixed per layer": dict(hidden=(2, 3), kernels=(5, 3), input_kernel_size=(3, 5)),
}


@pytest.mark.parametrize("peephole", [True, "channel", False])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_matches_reference(layout, peephole):
    module = make_convlstm(peephole=peephole, **LAYOUTS[layout])
    x = torch.randn(
        2, 3, 2, *FRAME, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    states = random_states(module, batch=2)
    with torch.no_grad():
        y, finals = module(x, states)
    y_ref, finals_ref = reference_convlstm(
        x.numpy(),
        numpy_params(module),
        hidden_channels=module.hidden_channels,
        peephole=peephole is not False,
        state=numpy_states(states),
    )
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-10, atol=1e-12)
    assert len(finals) == len(finals_ref)
    for (h, c), (h_ref, c_ref) in zip(finals, finals_ref, strict=True):
        np.testing.assert_allclose(h.numpy(), h_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c.numpy(), c_ref, rtol=1e-10, atol=1e-12)


def conv2d_reference(module, x, state, input_kernels, state_kernels):
    """Shi et al. eq. 3 step by step with torch's conv2d, padded by the kernel sizes the test
    expects (not read from the module): returns (y, [(h, c) per layer])."""
    F = torch.nn.functional
    params = dict(module.named_parameters())
    padding = {}  # the expected 'same' padding of each layer's weights, by identity
    for k in range(len(module.hidden_channels)):
        if f"weight_x_l{k}" in params:
            padding[id(params[f"weight_x_l{k}"])] = input_kernels[k] // 2
        padding[id(params[f"weight_h_l{k}"])] = state_kernels[k] // 2

    def conv(inputs, weight):
        return F.conv2d(inputs, weight, padding=padding[id(weight)])

    return reference_convlstm_steps(params, module.hidden_channels, x, state, conv)


@pytest.mark.parametrize("peephole", [True, "channel", False])
@pytest.mark.parametrize(
    "input_kernels, state_kernels",
    [((5,), (1,)), ((5, 5), (1, 1)), ((3, 5), (5, 3)), ((1, 3), (3, 5)), ((5, 3), (3, 3))],
)
def test_mixed_kernels_match_a_conv2d_reference(input_kernels, state_kernels, peephole):
    hidden = (3, 2)[: len(state_kernels)]
    module = make_convlstm(
        hidden=hidden, kernels=state_kernels, peephole=peephole, input_kernel_size=input_kernels
    )
    for k, (kx, ks) in enumerate(zip(input_kernels, state_kernels, strict=True)):
        assert getattr(module, f"weight_x_l{k}").shape[-2:] == (kx, kx)
        assert getattr(module, f"weight_h_l{k}").shape[-2:] == (ks, ks)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 2, *FRAME, dtype=torch.float64, generator=g)
    states = random_states(module, batch=2)
    with torch.no_grad():
        y, finals = module(x, states)
        y_ref, finals_ref = conv2d_reference(module, x, states, input_kernels, state_kernels)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for (h, c), (h_ref, c_ref) in zip(finals, finals_ref, strict=True):
        torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(c, c_ref, rtol=1e-12, atol=1e-12)


def test_mixed_kernels_without_input_and_in_chunks():
    torch.manual_seed(0)
    module = ConvLSTM(0, [3, 2], 1, num_layers=2, frame_size=FRAME, input_kernel_size=[5, 5])
    module = module.double()
    assert not hasattr(module, "weight_x_l0")  # layer 0 has no input
    assert module.weight_x_l1.shape == (8, 3, 5, 5) and module.weight_h_l1.shape == (8, 2, 1, 1)
    states = random_states(module, batch=2)
    with torch.no_grad():
        y, finals = module(None, states, steps=3)
        h0, c0 = states[0]
        outputs0 = []
        for _ in range(3):  # layer 0 alone: y_ref of a one-layer stack without input
            gates = (
                torch.nn.functional.conv2d(h0, module.weight_h_l0)
                + module.bias_l0[None, :, None, None]
            )
            i, f, g, o = gates.split(3, dim=1)
            c0 = torch.sigmoid(f + module.weight_cf_l0 * c0) * c0 + torch.sigmoid(
                i + module.weight_ci_l0 * c0
            ) * torch.tanh(g)
            h0 = torch.sigmoid(o + module.weight_co_l0 * c0) * torch.tanh(c0)
            outputs0.append(h0)
        torch.testing.assert_close(finals[0][1], c0, rtol=1e-12, atol=1e-12)
        upper = ConvLSTM(
            3, 2, 1, frame_size=FRAME, input_kernel_size=5
        ).double()  # layer 1 alone reads layer 0's hidden sequence
        upper.load_state_dict(
            {n.replace("_l1", "_l0"): p for n, p in module.named_parameters() if n.endswith("_l1")}
        )
        y_upper, _ = upper(torch.stack(outputs0, dim=1), [states[1]])
        torch.testing.assert_close(y, y_upper, rtol=1e-12, atol=1e-12)
        first, carried = module(None, states, steps=1)
        rest, _ = module(None, carried, steps=2)
        torch.testing.assert_close(torch.cat([first, rest], dim=1), y, rtol=1e-12, atol=1e-12)


def test_default_input_kernel_is_the_state_kernel():
    """Without input_kernel_size a model is what it was: same parameters, init and outputs."""
    kwargs = dict(num_layers=2, frame_size=FRAME)
    torch.manual_seed(7)
    old = ConvLSTM(2, [3, 4], [3, 5], **kwargs)
    torch.manual_seed(7)
    explicit = ConvLSTM(2, [3, 4], [3, 5], input_kernel_size=[3, 5], **kwargs)
    assert old.input_kernel_size == old.kernel_size == [3, 5]
    assert repr(old) == repr(explicit) and "input_kernel_size" not in repr(old)
    for (name, p), (name_e, p_e) in zip(
        old.named_parameters(), explicit.named_parameters(), strict=True
    ):
        assert name == name_e
        torch.testing.assert_close(p, p_e, rtol=0, atol=0)
    x = torch.randn(2, 3, 2, *FRAME)
    torch.testing.assert_close(old(x)[0], explicit(x)[0], rtol=0, atol=0)
    mixed = ConvLSTM(2, [3, 4], [3, 5], input_kernel_size=[5, 1], **kwargs)
    assert "input_kernel_size=[5, 1]" in repr(mixed)


def test_mixed_kernel_parameter_shapes_and_init():
    torch.manual_seed(0)
    module = ConvLSTM(16, [8, 4], 1, num_layers=2, frame_size=(6, 7), input_kernel_size=9)
    shapes = {n: tuple(p.shape) for n, p in module.named_parameters() if n.startswith("weight_")}
    assert shapes == {
        "weight_x_l0": (32, 16, 9, 9),
        "weight_h_l0": (32, 8, 1, 1),
        "weight_ci_l0": (8, 6, 7),
        "weight_cf_l0": (8, 6, 7),
        "weight_co_l0": (8, 6, 7),
        "weight_x_l1": (16, 8, 9, 9),
        "weight_h_l1": (16, 4, 1, 1),
        "weight_ci_l1": (4, 6, 7),
        "weight_cf_l1": (4, 6, 7),
        "weight_co_l1": (4, 6, 7),
    }
    bound = 1 / (16 * 81 + 8 * 1) ** 0.5  # fan_in of the gate: Cin kx^2 + Hc k^2
    assert module.weight_x_l0.abs().max() <= bound and module.weight_h_l0.abs().max() <= bound
    assert module.weight_x_l0.std() > bound / 4


def test_zero_initial_state_and_no_bias_match_reference():
    module = make_convlstm(hidden=(2, 3), kernels=(3, 3), bias=False)
    assert not any(name.startswith("bias") for name, _ in module.named_parameters())
    x = torch.randn(1, 4, 2, *FRAME, dtype=torch.float64)
    with torch.no_grad():
        y, _ = module(x)
    y_ref, _ = reference_convlstm(
        x.numpy(), numpy_params(module), hidden_channels=[2, 3], peephole=True, bias=False
    )
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-10, atol=1e-12)


def test_forecaster_without_input_runs_from_its_state():
    module = make_convlstm(in_channels=0, hidden=(3, 2), kernels=(3, 3))
    names = {name for name, _ in module.named_parameters()}
    assert "weight_x_l0" not in names and "weight_x_l1" in names
    states = random_states(module, batch=2)
    with torch.no_grad():
        y, finals = module(None, states, steps=4)
    assert y.shape == (2, 4, 2, *FRAME)
    y_ref, finals_ref = reference_convlstm(
        None, numpy_params(module), hidden_channels=[3, 2], peephole=True,
        state=numpy_states(states), steps=4,
    )  # fmt: skip
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(finals[0][1].numpy(), finals_ref[0][1], rtol=1e-10, atol=1e-12)


def test_streaming_in_chunks_equals_one_call():
    module = make_convlstm(hidden=(3, 2), kernels=(3, 5), peephole="channel")
    x = torch.randn(2, 7, 2, *FRAME, dtype=torch.float64)
    with torch.no_grad():
        y_full, finals_full = module(x)
        state, pieces = None, []
        for chunk in x.split([3, 1, 3], dim=1):
            y, state = module(chunk, state)
            pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, dim=1), y_full, rtol=0, atol=1e-13)
    for (h, c), (h_full, c_full) in zip(state, finals_full, strict=True):
        torch.testing.assert_close(h, h_full, rtol=0, atol=1e-13)
        torch.testing.assert_close(c, c_full, rtol=0, atol=1e-13)


def test_batch_first_false_is_the_transposed_layout():
    batch_first = make_convlstm()
    time_major = make_convlstm(batch_first=False)
    x = torch.randn(2, 3, 2, *FRAME, dtype=torch.float64)
    with torch.no_grad():
        y_bf, finals_bf = batch_first(x)
        y_tm, finals_tm = time_major(x.transpose(0, 1))
    torch.testing.assert_close(y_tm.transpose(0, 1), y_bf, rtol=0, atol=0)
    torch.testing.assert_close(finals_tm[0][1], finals_bf[0][1], rtol=0, atol=0)


@pytest.mark.parametrize("peephole", [True, False])
def test_gradcheck(peephole):
    torch.manual_seed(3)
    module = ConvLSTM(1, [2, 1], [3, 1], num_layers=2, frame_size=(3, 3), peephole=peephole)
    module = module.double()
    names = [name for name, _ in module.named_parameters()]
    x = torch.randn(1, 2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    states = [
        tuple(torch.randn(1, hc, 3, 3, dtype=torch.float64, requires_grad=True) for _ in range(2))
        for hc in (2, 1)
    ]

    def function(x, h0, c0, h1, c1, *weights):
        y, finals = torch.func.functional_call(
            module, dict(zip(names, weights, strict=True)), (x, [(h0, c0), (h1, c1)])
        )
        return y, *finals[0], *finals[1]

    inputs = (x, *states[0], *states[1], *module.parameters())
    assert torch.autograd.gradcheck(function, inputs, fast_mode=True)


def test_channel_peepholes_run_on_any_frame_size():
    module = ConvLSTM(1, 2, 3, peephole="channel")
    assert module.weight_ci_l0.shape == (2, 1, 1)
    for frame in ((4, 4), (7, 5)):
        y, [(h, c)] = module(torch.randn(1, 2, 1, *frame))
        assert y.shape == (1, 2, 2, *frame) and c.shape == (1, 2, *frame)


def test_parameter_names_and_shapes():
    module = ConvLSTM(3, [4, 5], [3, 5], num_layers=2, frame_size=(6, 7))
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == {
        "weight_x_l0": (16, 3, 3, 3),
        "weight_h_l0": (16, 4, 3, 3),
        "bias_l0": (16,),
        "weight_ci_l0": (4, 6, 7),
        "weight_cf_l0": (4, 6, 7),
        "weight_co_l0": (4, 6, 7),
        "weight_x_l1": (20, 4, 5, 5),
        "weight_h_l1": (20, 5, 5, 5),
        "bias_l1": (20,),
        "weight_ci_l1": (5, 6, 7),
        "weight_cf_l1": (5, 6, 7),
        "weight_co_l1": (5, 6, 7),
    }
    bound = 1 / (3 + 4) ** 0.5 / 3  # fan_in of layer 0's gate convolution: (Cin + Hc) k^2
    assert module.weight_x_l0.abs().max() <= bound and module.weight_ci_l0.abs().max() <= bound
    assert module.weight_h_l0.std() > bound / 4


class SequenceOnly(torch.nn.Module):
    def __init__(self, core: ConvLSTM) -> None:
        super().__init__()
        self.core = core

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.core(x)[0]


def test_export_and_trace_give_the_same_outputs():
    torch.manual_seed(4)
    module = ConvLSTM(1, [2, 2], 3, num_layers=2, frame_size=(4, 4)).eval()
    x, other = torch.randn(1, 3, 1, 4, 4), torch.randn(1, 3, 1, 4, 4)
    exported = torch.export.export(module, (x,)).module()
    y, finals = exported(other)
    y_eager, finals_eager = module(other)
    torch.testing.assert_close(y, y_eager)
    torch.testing.assert_close(finals[1][1], finals_eager[1][1])
    # torch.jit.trace cannot return a list of pairs: trace the sequence output alone.
    traced = torch.jit.trace(SequenceOnly(module), (x,))
    torch.testing.assert_close(traced(other), y_eager)


def _states(*shapes):
    return [(torch.zeros(s), torch.zeros(s)) for s in shapes]


BAD_INPUTS = {
    "rank": (lambda m: m(torch.randn(2, 3, 5, 6)), r"\[B, T, 2, 5, 6\]"),
    "channels": (lambda m: m(torch.randn(2, 3, 1, 5, 6)), r"\[B, T, 2, 5, 6\]"),
    "frame size": (lambda m: m(torch.randn(2, 3, 2, 6, 5)), r"\[B, T, 2, 5, 6\]"),
    "nan": (lambda m: m(torch.full((2, 3, 2, 5, 6), float("nan"))), "NaN"),
    "integer dtype": (
        lambda m: m(torch.zeros(2, 3, 2, 5, 6, dtype=torch.int32)),
        r"expected dtype torch.float32",
    ),
    "float64 into float32 model": (
        lambda m: m(torch.zeros(2, 3, 2, 5, 6, dtype=torch.float64)),
        r"expected dtype torch.float32",
    ),
    "no steps": (lambda m: m(torch.zeros(2, 0, 2, 5, 6)), "non-empty"),
    "inf in state": (
        lambda m: m(
            torch.randn(2, 3, 2, 5, 6),
            [
                (torch.zeros(2, 3, 5, 6), torch.full((2, 3, 5, 6), float("inf"))),
                *_states((2, 4, 5, 6)),
            ],
        ),
        r"state\[0\] c: contains NaN",
    ),
    "state count": (lambda m: m(torch.randn(2, 3, 2, 5, 6), _states((2, 3, 5, 6))), "list of 2"),
    "state shape": (
        lambda m: m(torch.randn(2, 3, 2, 5, 6), _states((2, 3, 5, 6), (2, 3, 5, 6))),
        r"state\[1\] h: expected shape \[2, 4, 5, 6\]",
    ),
    "state not pairs": (
        lambda m: m(torch.randn(2, 3, 2, 5, 6), [torch.zeros(2, 3, 5, 6)] * 2),
        r"state\[0\]: expected an \(h, c\) pair",
    ),
    "x none with input channels": (lambda m: m(None, steps=3), "in_channels=0"),
    "steps with x": (lambda m: m(torch.randn(2, 3, 2, 5, 6), steps=3), "steps"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_input_error(case):
    call, message = BAD_INPUTS[case]
    module = ConvLSTM(2, [3, 4], 3, num_layers=2, frame_size=(5, 6))
    with pytest.raises(InputError, match=message):
        call(module)


def test_no_input_model_needs_state_and_steps():
    module = ConvLSTM(0, 3, 3, peephole=False)
    state = _states((2, 3, 5, 6))
    with pytest.raises(InputError, match="no input"):
        module(torch.randn(2, 3, 0, 5, 6), state)
    with pytest.raises(InputError, match="steps"):
        module(None, state)
    for bad_state in (None, [], [()], torch.zeros(2, 3, 5, 6), [(torch.zeros(3, 5, 6),) * 2]):
        with pytest.raises(InputError, match=r"required with x=None.*\[B, 3, H, W\]"):
            module(None, bad_state, steps=2)
    with pytest.raises(InputError, match=r"state\[0\] c: expected shape \[2, 3, 5, 6\]"):
        module(None, [(torch.zeros(2, 3, 5, 6), torch.zeros(2, 3, 5, 5))], steps=2)
    assert module(None, state, steps=2)[0].shape == (2, 2, 3, 5, 6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel_size=4), "odd"),
        (dict(input_kernel_size=4), "input_kernel_size: expected odd"),
        (dict(input_kernel_size=[5, 2], kernel_size=1, num_layers=2), "input_kernel_size.*odd"),
        (dict(input_kernel_size=[5, 5]), r"input_kernel_size: .*list of 1 ints"),
        (dict(input_kernel_size=0), "input_kernel_size: expected positive"),
        (dict(input_kernel_size=True), "input_kernel_size: expected positive"),
        (dict(input_kernel_size="5"), "input_kernel_size: expected an int or a list"),
        (dict(kernel_size=[3, 2], num_layers=2), "odd"),
        (dict(kernel_size=[3, 3]), r"list of 1 ints"),
        (dict(hidden_channels=[3, 3, 3], num_layers=2), r"list of 2 ints"),
        (dict(hidden_channels=0), "positive"),
        (dict(frame_size=None), "frame_size: required"),
        (dict(frame_size=(5, 0)), "frame_size"),
        (dict(peephole="diagonal"), "peephole"),
        (dict(in_channels=-1), "in_channels"),
        (dict(num_layers=0), "num_layers"),
    ],
)
def test_impossible_configuration_raises(kwargs, message):
    config = dict(in_channels=1, hidden_channels=3, kernel_size=3, frame_size=(5, 6)) | kwargs
    with pytest.raises(InputError, match=message):
        ConvLSTM(**config)


@pytest.mark.slow
def test_onnx_export_runs_in_the_onnx_reference_evaluator():
    import onnx
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(5)
    module = ConvLSTM(1, 2, 3, frame_size=(4, 4)).eval()
    x = torch.randn(1, 3, 1, 4, 4)
    program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
    onnx.checker.check_model(program.model_proto)
    evaluator = ReferenceEvaluator(program.model_proto)
    y, h, c = evaluator.run(None, {program.model_proto.graph.input[0].name: x.numpy()})
    y_eager, [(h_eager, c_eager)] = module(x)
    np.testing.assert_allclose(y, y_eager.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(c, c_eager.detach().numpy(), rtol=0, atol=1e-6)


def test_input_convolution_of_all_steps_is_one_batched_call(monkeypatch):
    module = ConvLSTM(1, [2, 3], 3, num_layers=2, frame_size=(4, 4))
    calls = []
    conv2d = torch.nn.functional.conv2d

    def counting_conv2d(inputs, weight, *args, **kwargs):
        calls.append((tuple(inputs.shape), tuple(weight.shape)))
        return conv2d(inputs, weight, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", counting_conv2d)
    module(torch.randn(2, 5, 1, 4, 4))
    input_calls = [c for c in calls if c[1] in ((8, 1, 3, 3), (12, 2, 3, 3))]
    assert input_calls == [((10, 1, 4, 4), (8, 1, 3, 3)), ((10, 2, 4, 4), (12, 2, 3, 3))]
    assert len(calls) == 2 + 2 * 5  # plus one hidden-state convolution per layer and step
