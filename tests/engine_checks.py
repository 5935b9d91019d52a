"""Shared assertions on compressed artifacts and the integer engine's blocks."""

import numpy as np
import torch

from lstmforge.compress.compressor import block_config, float_weights
from lstmforge.engine import substitute
from lstmforge.engine.blocks import run_convlstm
from lstmforge.engine.float_datapath import FloatDatapath
from lstmforge.engine.runner import run_block


def assert_same_artifact(loaded, original):
    """Block by block: same config and formats, same dense codes of every matrix and same
    codes of every vector."""
    for block, orig in zip(loaded.blocks, original.blocks, strict=True):
        assert block.config == orig.config and block.formats == orig.formats
        for name, m in orig.matrices.items():
            np.testing.assert_array_equal(block.matrices[name].dense_codes(), m.dense_codes())
        for name, v in orig.vectors.items():
            np.testing.assert_array_equal(block.vectors[name].codes, v.codes)


def assert_fast_equals_reference_and_streams(cm, block, x, forecaster=None, steps=2):
    """The fast backend equals the reference one bit for bit (output and every final (h, c)),
    and running ``x`` in two chunks with the state carried equals one run. With
    ``forecaster`` (an input-less block), it also runs ``steps`` steps from each backend's
    final states, and the two agree bit for bit."""
    y_ref, s_ref = run_block(cm, block, x, backend="reference")
    y_fast, s_fast = run_block(cm, block, x, backend="fast")
    np.testing.assert_array_equal(y_fast, y_ref)
    for (h, c), (h_ref, c_ref) in zip(s_fast, s_ref, strict=True):
        np.testing.assert_array_equal(h, h_ref)
        np.testing.assert_array_equal(c, c_ref)
    y1, state = run_block(cm, block, x[:, :1])
    y2, _ = run_block(cm, block, x[:, 1:], state)
    np.testing.assert_array_equal(np.concatenate([y1, y2], axis=1), y_fast)
    if forecaster is not None:
        f_ref, _ = run_block(cm, forecaster, None, s_ref, steps=steps, backend="reference")
        f_fast, _ = run_block(cm, forecaster, None, s_fast, steps=steps)
        np.testing.assert_array_equal(f_fast, f_ref)


def assert_float_dataflow_equals_the_module(module, x):
    """The engine's float dataflow of a float64 ConvLSTM ``module`` on ``x`` equals the module
    (output and every final (h, c)) to 1e-12. Returns ``(y, weights, config)`` for more."""
    mats, _, vecs = float_weights(module, "convlstm")
    config = block_config(module, "convlstm")
    y, finals = run_convlstm(FloatDatapath(mats | vecs), config, x.numpy(), None)
    with torch.no_grad():
        ref_y, ref_states = module(x)
    np.testing.assert_allclose(y, ref_y.numpy(), atol=1e-12)
    for (h, c), (ref_h, ref_c) in zip(finals, ref_states, strict=True):
        np.testing.assert_allclose(h, ref_h.numpy(), atol=1e-12)
        np.testing.assert_allclose(c, ref_c.numpy(), atol=1e-12)
    return y, mats | vecs, config


def assert_substituted_model_tracks_the_float_model(model, cm, x, shape):
    """``model`` with ``cm`` substituted gives outputs of ``shape``: the integer engine within
    5e-3 of the float-sparse one, which pruning moved away from the float model."""
    with torch.no_grad():
        ref = model(x)
        pruned = substitute(model, cm, mode="float-sparse")(x)
        integer = substitute(model, cm)(x)
    assert integer.shape == ref.shape == shape
    assert np.abs(integer.numpy() - pruned.numpy()).max() < 5e-3
    assert np.abs(pruned.numpy() - ref.numpy()).max() > 0  # pruning did change it
