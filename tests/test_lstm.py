"""lstmforge.nn.LSTM against a naive float64 reference, torch.nn.LSTM, and its own contract."""

import itertools

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmforge.errors import InputError
from lstmforge.nn import LSTM
from lstmforge.nn.lstm import reverse_padded
from reference_cells import reference_lstm

I, H, P, B, T = 3, 4, 2, 3, 5


def make_lstm(**kwargs) -> LSTM:
    torch.manual_seed(0)
    return LSTM(I, H, **kwargs).double()


def random_state(module: LSTM, batch: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    """A random initial state that requires grad (its gradient is compared too)."""
    layers = module.num_layers * module.num_directions
    g = torch.Generator().manual_seed(1)
    h0 = torch.randn(layers, batch, module.proj_size or H, generator=g, dtype=torch.float64)
    c0 = torch.randn(layers, batch, H, generator=g, dtype=torch.float64)
    return h0.requires_grad_(True), c0.requires_grad_(True)


def run_reference(module: LSTM, x, state=None, lengths=None):
    return reference_lstm(
        x,
        dict(module.named_parameters()),
        hidden_size=H,
        num_layers=module.num_layers,
        proj_size=module.proj_size,
        peephole=module.peephole,
        bias=module.bias,
        bidirectional=module.bidirectional,
        state=state,
        lengths=lengths,
    )


def loss_of(y, h_n, c_n):
    """A scalar that weighs every output element differently, so gradients are informative."""
    weights = torch.linspace(-1.0, 1.0, y.numel(), dtype=y.dtype).reshape(y.shape)
    return (y * weights).sum() + (h_n**2).sum() + c_n.sum()


def gradients(module: LSTM, inputs: list[torch.Tensor], outputs) -> list[torch.Tensor]:
    """Gradients of :func:`loss_of` with respect to ``inputs`` and every parameter."""
    return torch.autograd.grad(loss_of(*outputs), [*inputs, *module.parameters()])


CONFIGS = [
    dict(peephole=pe, proj_size=proj, num_layers=layers, bidirectional=bi)
    for pe, proj, layers, bi in itertools.product((True, False), (0, P), (1, 2, 3), (False, True))
]


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items())
)
def test_matches_reference_outputs_states_and_gradients(config):
    module = make_lstm(**config)
    x = torch.randn(B, T, I, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x.requires_grad_(True)
    state = random_state(module)
    y, (h_n, c_n) = module(x, state)
    y_ref, h_ref, c_ref = run_reference(module, x, state)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c_n, c_ref, rtol=1e-10, atol=1e-12)
    for got, want in zip(
        gradients(module, [x, *state], (y, h_n, c_n)),
        gradients(module, [x, *state], (y_ref, h_ref, c_ref)),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("peephole", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("proj_size", [0, P])
def test_variable_lengths_match_reference(peephole, bidirectional, proj_size):
    module = make_lstm(
        peephole=peephole, bidirectional=bidirectional, proj_size=proj_size, num_layers=2
    )
    lengths = [5, 2, 4]
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    state = random_state(module)
    y, (h_n, c_n) = module(x, state, lengths=torch.tensor(lengths))
    y_ref, h_ref, c_ref = run_reference(module, x, state, lengths)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c_n, c_ref, rtol=1e-10, atol=1e-12)
    assert torch.all(y[1, 2:] == 0) and torch.all(y[2, 4:] == 0)  # padded steps are zero
    for got, want in zip(
        gradients(module, [x, *state], (y, h_n, c_n)),
        gradients(module, [x, *state], (y_ref, h_ref, c_ref)),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    y_again = module(x, state, lengths=torch.tensor(lengths))[0]
    assert torch.all(torch.autograd.grad(y_again.sum(), x)[0][1, 2:] == 0)  # padding is ignored


@pytest.mark.parametrize("peephole", [True, False])
def test_packed_sequence_in_and_out(peephole):
    module = make_lstm(peephole=peephole, bidirectional=True, proj_size=P)
    lengths = torch.tensor([3, 5, 1])
    x = torch.randn(B, T, I, dtype=torch.float64)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    state = random_state(module)
    out, (h_n, c_n) = module(packed, state)
    assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    assert torch.equal(out.sorted_indices, packed.sorted_indices)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    y_ref, h_ref, c_ref = run_reference(module, x, state, lengths.tolist())
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c_n, c_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("peephole", [True, False])
@pytest.mark.parametrize("proj_size", [0, P])
def test_streaming_in_chunks_equals_one_call(peephole, proj_size):
    module = make_lstm(peephole=peephole, proj_size=proj_size, num_layers=3)
    x = torch.randn(B, 9, I, dtype=torch.float64)
    y_full, (h_full, c_full) = module(x)
    state, pieces = None, []
    for chunk in x.split([4, 1, 3, 1], dim=1):
        y, state = module(chunk, state)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, dim=1), y_full, rtol=0, atol=1e-13)
    torch.testing.assert_close(state[0], h_full, rtol=0, atol=1e-13)
    torch.testing.assert_close(state[1], c_full, rtol=0, atol=1e-13)


@pytest.mark.parametrize("peephole", [True, False])
def test_streaming_gradients_equal_one_call_gradients(peephole):
    module = make_lstm(peephole=peephole, proj_size=P, num_layers=2)
    x = torch.randn(B, 6, I, dtype=torch.float64, requires_grad=True)
    y_full, (h_full, c_full) = module(x)
    full = gradients(module, [x], (y_full, h_full, c_full))
    first, state = module(x[:, :2])
    second, (h_n, c_n) = module(x[:, 2:], state)
    chunked = gradients(module, [x], (torch.cat([first, second], dim=1), h_n, c_n))
    for got, want in zip(chunked, full, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


def graph_node_names(output: torch.Tensor) -> set[str]:
    """Names of all autograd nodes behind ``output``."""
    names, stack, seen = set(), [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("with_lengths", [False, True])
def test_hand_written_backward_equals_autograd_through_the_steps(monkeypatch, with_lengths):
    """The BPTT backward vs autograd through the same steps (the path used when tracing)."""
    from lstmforge.nn import lstm_recurrence

    module = make_lstm(proj_size=P, num_layers=2, bidirectional=True)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    state = random_state(module)
    lengths = torch.tensor([5, 1, 3]) if with_lengths else None
    y, (h_n, c_n) = module(x, state, lengths=lengths)
    assert "_PeepholeRecurrenceBackward" in graph_node_names(y)
    hand_written = gradients(module, [x, *state], (y, h_n, c_n))
    monkeypatch.setattr(lstm_recurrence, "is_tracing", lambda: True)
    y, (h_n, c_n) = module(x, state, lengths=lengths)
    assert "_PeepholeRecurrenceBackward" not in graph_node_names(y)
    for got, want in zip(hand_written, gradients(module, [x, *state], (y, h_n, c_n)), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("proj_size", [0, 3])
@pytest.mark.parametrize("peephole", [True, False])
def test_torch_lstm_oracle_float32(bidirectional, proj_size, peephole):
    torch.manual_seed(3)
    oracle = torch.nn.LSTM(
        6, 8, num_layers=2, proj_size=proj_size, batch_first=True, bidirectional=bidirectional
    )
    module = LSTM(
        6, 8, num_layers=2, proj_size=proj_size, peephole=peephole, bidirectional=bidirectional
    )
    result = module.load_state_dict(oracle.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert all(k.startswith(("weight_ci", "weight_cf", "weight_co")) for k in result.missing_keys)
    assert len(result.missing_keys) == (3 * 2 * module.num_directions if peephole else 0)
    with torch.no_grad():
        for name in result.missing_keys:
            module.get_parameter(name).zero_()
    x = torch.randn(4, 7, 6)
    state = (
        torch.randn(2 * module.num_directions, 4, proj_size or 8),
        torch.randn(2 * module.num_directions, 4, 8),
    )
    y_ref, (h_ref, c_ref) = oracle(x, state)
    y, (h_n, c_n) = module(x, state)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(c_n, c_ref, rtol=0, atol=1e-5)


def test_from_torch_zeroes_peepholes_and_matches():
    torch.manual_seed(4)
    oracle = torch.nn.LSTM(6, 8, proj_size=3, batch_first=True)
    module = LSTM.from_torch(oracle)
    assert module.peephole and torch.all(module.weight_co_l0 == 0)
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(module(x)[0], oracle(x)[0], rtol=0, atol=1e-5)


def test_batch_first_false_is_the_transposed_layout():
    batch_first = make_lstm(bidirectional=True, proj_size=P)
    time_major = LSTM(I, H, bidirectional=True, proj_size=P, batch_first=False).double()
    time_major.load_state_dict(batch_first.state_dict())
    x = torch.randn(B, T, I, dtype=torch.float64)
    y_bf, (h_bf, c_bf) = batch_first(x)
    y_tm, (h_tm, c_tm) = time_major(x.transpose(0, 1))
    torch.testing.assert_close(y_tm.transpose(0, 1), y_bf, rtol=0, atol=0)
    torch.testing.assert_close(h_tm, h_bf, rtol=0, atol=0)


@pytest.mark.parametrize("peephole", [True, False])
def test_dropout_only_between_layers_and_only_in_training(peephole):
    with_dropout = make_lstm(num_layers=2, dropout=0.5, peephole=peephole)
    without = make_lstm(num_layers=2, dropout=0.0, peephole=peephole)
    without.load_state_dict(with_dropout.state_dict())
    x = torch.randn(B, T, I, dtype=torch.float64)
    with_dropout.eval()
    torch.testing.assert_close(with_dropout(x)[0], without(x)[0], rtol=0, atol=0)
    with_dropout.train()
    torch.manual_seed(5)
    y_train = with_dropout(x)[0]
    assert not torch.allclose(y_train, without(x)[0])
    single = make_lstm(num_layers=1, dropout=0.5, peephole=peephole).train()
    reference = make_lstm(num_layers=1, peephole=peephole)
    torch.testing.assert_close(single(x)[0], reference(x)[0], rtol=0, atol=0)  # nothing after


def test_parameter_names_shapes_and_initialisation():
    module = LSTM(5, 6, num_layers=2, proj_size=3, bidirectional=True)
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    oracle = torch.nn.LSTM(5, 6, num_layers=2, proj_size=3, bidirectional=True)
    for name, p in oracle.named_parameters():
        assert shapes.pop(name) == tuple(p.shape)
    expected_peepholes = {
        f"weight_{g}_l{k}{s}": (6,)
        for g in ("ci", "cf", "co")
        for k in (0, 1)
        for s in ("", "_reverse")
    }
    assert shapes == expected_peepholes
    bound = 1 / 6**0.5
    for p in module.parameters():
        assert p.abs().max() <= bound and p.std() > bound / 4  # uniform(-1/sqrt(H), 1/sqrt(H))


def test_no_bias_and_torch_oracle():
    torch.manual_seed(6)
    oracle = torch.nn.LSTM(4, 5, bias=False, batch_first=True)
    module = LSTM.from_torch(oracle)
    assert not any("bias" in name for name, _ in module.named_parameters())
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(module(x)[0], oracle(x)[0], rtol=0, atol=1e-5)


def test_gradcheck_peephole_projection_bidirectional_with_lengths():
    module = LSTM(2, 3, num_layers=2, proj_size=2, bidirectional=True).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    params = list(module.parameters())
    names = [name for name, _ in module.named_parameters()]

    def function(x, h0, c0, *weights):
        outputs = torch.func.functional_call(
            module,
            dict(zip(names, weights, strict=True)),
            (x, (h0, c0)),
            {"lengths": torch.tensor([3, 2])},
        )
        y, (h_n, c_n) = outputs
        return y, h_n, c_n

    assert torch.autograd.gradcheck(function, (x, h0, c0, *params), fast_mode=True)


def test_reverse_padded_reverses_each_sequence_within_its_length():
    x = torch.arange(12.0).reshape(4, 3, 1)  # [T=4, B=3, 1]
    lengths = torch.tensor([4, 2, 1])
    y = reverse_padded(x, lengths)
    assert y[:, 0, 0].tolist() == [9.0, 6.0, 3.0, 0.0]
    assert y[:, 1, 0].tolist() == [4.0, 1.0, 7.0, 10.0]
    assert y[:, 2, 0].tolist() == [2.0, 5.0, 8.0, 11.0]
    assert torch.equal(reverse_padded(y, lengths), x)


def test_trace_and_export_give_the_same_outputs():
    torch.manual_seed(7)
    module = LSTM(3, 4, num_layers=2, proj_size=2).eval()
    x = torch.randn(2, 5, 3)
    expected = module(x)[0]
    traced = torch.jit.trace(module, (x,))
    other = torch.randn(2, 5, 3)
    torch.testing.assert_close(traced(other)[0], module(other)[0])
    exported = torch.export.export(module, (x,))
    torch.testing.assert_close(exported.module()(x)[0], expected)


BAD_INPUTS = {
    "rank": (lambda m: m(torch.randn(5, 3)), r"\[B, T, 3\]"),
    "features": (lambda m: m(torch.randn(2, 5, 4)), r"\[B, T, 3\]"),
    "integer dtype": (
        lambda m: m(torch.ones(2, 5, 3, dtype=torch.int64)),
        "expected dtype torch.float32",
    ),
    "float64 into float32 model": (
        lambda m: m(torch.ones(2, 5, 3, dtype=torch.float64)),
        "expected dtype torch.float32",
    ),
    "no steps": (lambda m: m(torch.ones(2, 0, 3)), "non-empty"),
    "h0 dtype": (
        lambda m: m(torch.randn(2, 5, 3), (torch.zeros(1, 2, 2).double(), torch.zeros(1, 2, 4))),
        "h_0: expected dtype torch.float32",
    ),
    "nan": (lambda m: m(torch.full((2, 5, 3), float("nan"))), "NaN"),
    "inf": (lambda m: m(torch.full((2, 5, 3), float("inf"))), "NaN or infinite"),
    "state not a pair": (lambda m: m(torch.randn(2, 5, 3), torch.zeros(1, 2, 4)), r"\(h_0, c_0\)"),
    "h0 shape": (
        lambda m: m(torch.randn(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))),
        r"h_0: expected shape \[1, 2, 2\]",
    ),
    "c0 shape": (
        lambda m: m(torch.randn(2, 5, 3), (torch.zeros(1, 2, 2), torch.zeros(1, 3, 4))),
        r"c_0: expected shape \[1, 2, 4\]",
    ),
    "c0 nan": (
        lambda m: m(
            torch.randn(2, 5, 3), (torch.zeros(1, 2, 2), torch.full((1, 2, 4), float("nan")))
        ),
        "NaN",
    ),
    "lengths shape": (lambda m: m(torch.randn(2, 5, 3), lengths=torch.tensor([5])), r"shape \[2\]"),
    "lengths float": (
        lambda m: m(torch.randn(2, 5, 3), lengths=torch.tensor([5.0, 2.0])),
        "integer",
    ),
    "lengths zero": (lambda m: m(torch.randn(2, 5, 3), lengths=torch.tensor([5, 0])), r"1\.\.5"),
    "lengths too long": (
        lambda m: m(torch.randn(2, 5, 3), lengths=torch.tensor([6, 1])),
        r"1\.\.5",
    ),
}


@pytest.mark.parametrize("peephole", [True, False])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_input_error(case, peephole):
    call, message = BAD_INPUTS[case]
    module = LSTM(3, 4, proj_size=2, peephole=peephole)
    with pytest.raises(InputError, match=message):
        call(module)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_size=0, hidden_size=4), "input_size"),
        (dict(input_size=3, hidden_size=4, proj_size=4), "proj_size"),
        (dict(input_size=3, hidden_size=4, num_layers=0), "num_layers"),
        (dict(input_size=3, hidden_size=4, dropout=1.5), "dropout"),
        (dict(input_size=3, hidden_size=4, peephole="yes"), "peephole"),
    ],
)
def test_impossible_configuration_raises(kwargs, message):
    with pytest.raises(InputError, match=message):
        LSTM(**kwargs)


def test_packed_sequence_sorted_by_length_matches_torch():
    torch.manual_seed(9)
    oracle = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    module = LSTM.from_torch(oracle)
    packed = pack_padded_sequence(torch.randn(3, 5, 3), [5, 4, 2], batch_first=True)
    assert packed.sorted_indices is None
    out, (h_n, _) = module(packed)
    out_ref, (h_ref, _) = oracle(packed)
    assert out.sorted_indices is None
    torch.testing.assert_close(out.data, out_ref.data, rtol=0, atol=1e-5)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=1e-5)


def test_lengths_as_a_list_and_in_the_fused_path_match_torch_packing():
    torch.manual_seed(10)
    oracle = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
    module = LSTM.from_torch(oracle, peephole=False)
    x = torch.randn(3, 5, 3)
    y, (h_n, c_n) = module(x, lengths=[2, 5, 3])
    packed = pack_padded_sequence(x, [2, 5, 3], batch_first=True, enforce_sorted=False)
    out_ref, (h_ref, c_ref) = oracle(packed)
    y_ref, _ = pad_packed_sequence(out_ref, batch_first=True, total_length=5)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=0)
    torch.testing.assert_close(c_n, c_ref, rtol=0, atol=0)


def test_packed_sequence_with_lengths_is_rejected():
    module = LSTM(3, 4)
    packed = pack_padded_sequence(torch.randn(2, 5, 3), torch.tensor([5, 3]), batch_first=True)
    with pytest.raises(InputError, match="lengths"):
        module(packed, lengths=torch.tensor([5, 3]))


@pytest.mark.slow
def test_onnx_export_runs_in_the_onnx_reference_evaluator():
    import onnx
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(8)
    module = LSTM(3, 4, num_layers=2, proj_size=2).eval()
    x = torch.randn(2, 4, 3)
    program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
    onnx.checker.check_model(program.model_proto)
    evaluator = ReferenceEvaluator(program.model_proto)
    y, h_n, c_n = evaluator.run(None, {program.model_proto.graph.input[0].name: x.numpy()})
    y_eager, (h_eager, c_eager) = module(x)
    np.testing.assert_allclose(y, y_eager.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(h_n, h_eager.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(c_n, c_eager.detach().numpy(), rtol=0, atol=1e-6)


def test_input_projection_of_all_steps_is_one_matmul(monkeypatch):
    module = LSTM(3, 4, num_layers=2, bidirectional=True)
    calls = []
    linear = torch.nn.functional.linear

    def counting_linear(inputs, weight, *args, **kwargs):
        calls.append(tuple(inputs.shape))
        return linear(inputs, weight, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "linear", counting_linear)
    module(torch.randn(2, 7, 3))
    assert calls == [(7, 2, 3), (7, 2, 3), (7, 2, 8), (7, 2, 8)]  # per layer and direction


def test_peephole_lstmp_learns_to_recall_a_delayed_input():
    """Training through the hand-written backward: recall x_{t-3} (needs the memory)."""
    torch.manual_seed(0)
    lstm, head = LSTM(1, 16, proj_size=8), torch.nn.Linear(8, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=0.02)
    x = torch.randn(32, 12, 1, generator=torch.Generator().manual_seed(1))
    target = torch.roll(x, 3, dims=1)
    target[:, :3] = 0
    losses = []
    for _ in range(80):
        y, _ = lstm(x)
        loss = torch.nn.functional.mse_loss(head(y), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.5 and losses[-1] < 0.15 * losses[0]


def test_fused_path_uses_parametrized_weights_in_torch_order():
    """peephole=False runs torch's kernel; a parametrization (a pruning mask) must be honoured."""
    from torch.nn.utils import parametrize

    class _Mask(torch.nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, weight):
            return weight * self.mask

    torch.manual_seed(0)
    module = LSTM(5, 6, num_layers=2, proj_size=3, peephole=False)
    plain = LSTM(5, 6, num_layers=2, proj_size=3, peephole=False)
    plain.load_state_dict(module.state_dict())
    mask = (torch.rand_like(module.weight_hh_l0) > 0.5).float()
    parametrize.register_parametrization(module, "weight_hh_l0", _Mask(mask))
    with torch.no_grad():
        plain.weight_hh_l0.mul_(mask)
    x = torch.randn(2, 7, 5)
    torch.testing.assert_close(module(x)[0], plain(x)[0])


def test_peephole_recurrence_frees_its_graph_after_backward():
    """The saved activations must not keep the returned state alive (a reference cycle
    through the autograd node would leak every batch's activations during training)."""
    import gc
    import weakref

    from lstmforge.nn.lstm_recurrence import peephole_recurrence

    steps, batch, hidden = 5, 2, 4
    a = torch.randn(steps, batch, 4 * hidden, requires_grad=True)
    w_hh = torch.randn(4 * hidden, hidden, requires_grad=True)
    peepholes = tuple(torch.randn(hidden, requires_grad=True) for _ in range(3))
    state = torch.zeros(batch, hidden)
    y, r, c = peephole_recurrence(a, state, state, w_hh, peepholes, None, None)
    alive = [weakref.ref(t) for t in (y, r, c)]
    (y.sum() + r.sum() + c.sum()).backward()
    del y, r, c
    gc.collect()
    assert [ref() for ref in alive] == [None, None, None]


def test_bf16_autocast_forward_and_backward():
    """Lightning's bf16-mixed runs layers under autocast: inputs and states may be bf16 while
    the parameters stay float32 (the dtype check allows that dtype, and no other)."""
    module = LSTM(6, 8, num_layers=2, batch_first=True)
    x = torch.randn(3, 5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, (h, c) = module(x.bfloat16())
        y2, _ = module(x, (h, c))  # a float32 input with the bf16 state of the last call
    (y.float().sum() + y2.float().sum()).backward()
    assert module.weight_ih_l0.grad is not None and torch.isfinite(module.weight_ih_l0.grad).all()
    with pytest.raises(InputError, match="expected dtype"):
        module(x.bfloat16())  # outside autocast a dtype mismatch is still an error
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(InputError, match="dtype"):
        module(x.double())  # neither the parameters' dtype nor the autocast one
