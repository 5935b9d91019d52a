"""The .lfz artifact: save/load round trip, manifest content, and corrupt files."""

import copy
import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from lstmforge.compress import compress_model, footprint, load
from lstmforge.errors import InputError
from lstmforge.nn import LSTM


class _Speechish(nn.Module):
    """An LSTMP stack followed by an output layer (the speech model's shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = LSTM(6, 24, num_layers=2, proj_size=12)
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    torch.manual_seed(0)
    model = _Speechish().eval()
    cm = compress_model(model, density=0.25, num_pes=4, calibration=torch.randn(2, 5, 6))
    path = cm.save(tmp_path_factory.mktemp("lfz") / "model.lfz")
    return model, cm, path


def test_artifact_arrays_are_read_only(artifact):
    """The engine derives constants from them once: edits replace objects, never write."""
    _, cm, path = artifact
    for model in (cm, load(path), copy.deepcopy(cm)):
        block = model.blocks[0]
        arrays = [
            block.vectors["bias_l0"].codes,
            block.matrices["weight_hh_l0"].pes[0].values,
            block.matrices["weight_hh_l0"].pes[0].col_ptr,
            *model.activation_tables.values(),
        ]
        for array in arrays:
            with pytest.raises(ValueError, match="read-only"):
                array[...] = 0


def test_round_trip_preserves_everything(artifact):
    _, cm, path = artifact
    back = load(path)
    assert [b.name for b in back.blocks] == ["rnn", "head"]
    assert [b.kind for b in back.blocks] == ["lstm", "linear"]
    assert back.num_pes == 4 and back.activation == cm.activation
    for block, orig in zip(back.blocks, cm.blocks, strict=True):
        assert block.config == orig.config and block.formats == orig.formats
        for name, m in orig.matrices.items():
            np.testing.assert_array_equal(block.matrices[name].dense_codes(), m.dense_codes())
            assert block.matrices[name].fmt == m.fmt
        for name, v in orig.vectors.items():
            np.testing.assert_array_equal(block.vectors[name].codes, v.codes)
    for name, table in cm.activation_tables.items():
        np.testing.assert_array_equal(back.activation_tables[name], table)


def test_manifest_lists_topology_density_and_formats(artifact):
    _, cm, path = artifact
    with np.load(path, allow_pickle=False) as z:
        manifest = json.loads(z["manifest.json"].tobytes())
        assert "b0/weight_ih_l0/pe003/rel_index" in z.files
    assert manifest["format"] == "lstmforge-lfz" and manifest["version"] == 1
    rnn = manifest["blocks"][0]
    assert rnn["config"]["proj_size"] == 12
    assert set(rnn["matrices"]) == {f"weight_{m}_l{k}" for m in ("ih", "hh", "hr") for k in (0, 1)}
    info = rnn["matrices"]["weight_hh_l0"]
    assert info["shape"] == [96, 12] and info["format"]["bits"] == 12
    assert info["density"] == pytest.approx(0.25, abs=0.01)
    assert len(set(info["nonzeros_per_pe"])) == 1  # balanced
    assert manifest["activation"]["kind"] == "lut"


def test_footprint_accounts_for_every_bit(artifact):
    _, cm, _ = artifact
    report = footprint(cm)
    m = cm.blocks[0].matrices["weight_ih_l0"]
    row = report["matrices"]["rnn:weight_ih_l0"]
    entries = sum(m.entries_per_pe)
    assert row["values_bits"] == 12 * entries and row["indices_bits"] == 4 * entries
    assert row["dense_fp32_bits"] == 32 * 96 * 6
    assert row["padding_entries"] == entries - m.nonzeros
    vectors = sum(v.codes.size * v.fmt.bits for b in cm.blocks for v in b.vectors.values())
    total = report["values_bytes"] + report["indices_bytes"] + report["pointers_bytes"]
    assert report["compressed_bytes"] == pytest.approx(total + vectors / 8)
    assert report["biases_bytes"] + report["peepholes_bytes"] == pytest.approx(vectors / 8)
    assert report["peepholes_bytes"] == 2 * 3 * 24 * 12 / 8  # two layers, [H] each, 12 bits
    assert report["ratio_vs_fp32"] == pytest.approx(
        report["dense_fp32_bytes"] / report["compressed_bytes"]
    )
    assert report["activation_tables_bytes"] == 2 * 1025 * 16 / 8  # outside the ratio


def test_pointer_width_is_the_longest_column_of_any_pe(artifact, tmp_path):
    _, cm, path = artifact
    report = footprint(cm)
    for b in cm.blocks:
        for name, m in b.matrices.items():
            longest = max(int(np.diff(pe.col_ptr).max()) for pe in m.pes)
            assert m.pointer_bits == max(1, int(np.ceil(np.log2(longest + 1))))
            row = report["matrices"][f"{b.name}:{name}"]
            assert row["pointer_bits"] == m.pointer_bits
            assert row["pointers_bits"] == m.num_pes * m.shape[1] * m.pointer_bits
    with np.load(path, allow_pickle=False) as z:
        manifest = json.loads(z["manifest.json"].tobytes())
    assert manifest["blocks"][0]["matrices"]["weight_hr_l1"]["pointer_bits"] == (
        cm.blocks[0].matrices["weight_hr_l1"].pointer_bits
    )

    def without_width(manifest):  # files written before the field existed
        for block in manifest["blocks"]:
            for info in block["matrices"].values():
                del info["pointer_bits"]

    old = load(_rewrite(path, tmp_path / "old.lfz", lambda a: _with_manifest(a, without_width)))
    assert footprint(old)["pointers_bytes"] == report["pointers_bytes"]

    def wrong_width(manifest):
        manifest["blocks"][0]["matrices"]["weight_ih_l0"]["pointer_bits"] += 1

    with pytest.raises(InputError, match="weight_ih_l0: pointer_bits"):
        load(_rewrite(path, tmp_path / "w.lfz", lambda a: _with_manifest(a, wrong_width)))


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def _with_manifest(arrays, edit):
    manifest = json.loads(arrays["manifest.json"].tobytes())
    edit(manifest)
    text = json.dumps(manifest).encode()
    arrays["manifest.json"] = np.frombuffer(text, np.uint8)
    arrays["manifest.sha256"] = np.frombuffer(hashlib.sha256(text).hexdigest().encode(), np.uint8)


def test_truncated_file(artifact, tmp_path):
    data = artifact[2].read_bytes()
    bad = tmp_path / "cut.lfz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.lfz"):
        load(bad)
    (tmp_path / "junk.lfz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        load(tmp_path / "junk.lfz")
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "missing.lfz")


def test_tampered_array(artifact, tmp_path):
    def flip(arrays):
        arrays["b0/weight_ih_l0/pe000/values"] = arrays["b0/weight_ih_l0/pe000/values"].copy()
        arrays["b0/weight_ih_l0/pe000/values"][0] += 1

    with pytest.raises(InputError, match="checksum"):
        load(_rewrite(artifact[2], tmp_path / "t.lfz", flip))
    with pytest.raises(InputError, match="do not match"):
        load(_rewrite(artifact[2], tmp_path / "d.lfz", lambda a: a.pop("act/tanh")))


def test_tampered_manifest(artifact, tmp_path):
    def edit_without_rehash(arrays):
        text = arrays["manifest.json"].tobytes().replace(b'"num_pes": 4', b'"num_pes": 5')
        arrays["manifest.json"] = np.frombuffer(text, np.uint8)

    with pytest.raises(InputError, match="manifest checksum"):
        load(_rewrite(artifact[2], tmp_path / "m.lfz", edit_without_rehash))

    def wrong_shape(manifest):
        manifest["blocks"][0]["matrices"]["weight_ih_l0"]["shape"] = [96, 7]

    with pytest.raises(InputError, match="weight_ih_l0: shape"):
        load(_rewrite(artifact[2], tmp_path / "s.lfz", lambda a: _with_manifest(a, wrong_shape)))

    def forged_rel_index(arrays):  # a consistent checksum does not make a bad stream valid
        key = "b0/weight_ih_l0/pe000/rel_index"
        arrays[key] = np.full_like(arrays[key], 15)

        def fix(manifest):
            manifest["arrays"][key]["sha256"] = hashlib.sha256(arrays[key].tobytes()).hexdigest()

        _with_manifest(arrays, fix)

    with pytest.raises(InputError, match="past the PE's last row|padding"):
        load(_rewrite(artifact[2], tmp_path / "r.lfz", forged_rel_index))


def _consistent(change_arrays):
    """An edit of the arrays with the manifest's checksums brought in line (a forged file)."""

    def change(arrays):
        changed = change_arrays(arrays)
        manifest_edit = changed if callable(changed) else None

        def fix(manifest):
            for key, array in arrays.items():
                if key in manifest["arrays"]:
                    manifest["arrays"][key].update(
                        sha256=hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
                        dtype=str(array.dtype),
                        shape=list(array.shape),
                    )
            if manifest_edit is not None:
                manifest_edit(manifest)

        _with_manifest(arrays, fix)

    return change


def _set(key, value):
    def edit(arrays):
        arrays[key] = np.asarray(value, dtype=arrays[key].dtype)

    return edit


def _manifest_only(edit):
    return lambda arrays: edit


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("b0/bias_l0", [1]), r"bias_l0: shape \[1\], topology needs \[96\]"),
        (_set("b0/weight_ci_l0", [1]), r"weight_ci_l0: shape \[1\], topology needs \[24\]"),
        (_set("act/sigmoid", np.full(1025, 40000)), "codes outside the output format"),
        (_manifest_only(lambda m: m.update(blocks=[])), "lists no blocks"),
        (_manifest_only(lambda m: m.update(num_pes="two")), "num_pes must be an integer"),
        (_manifest_only(lambda m: m.update(num_pes=2.9)), "num_pes must be an integer"),
        (
            _manifest_only(lambda m: m["blocks"][0]["formats"]["input"].update(bits="x")),
            "expected {'bits': int",
        ),
        (
            _manifest_only(lambda m: m["activation"].update(index_bits="ten")),
            "index_bits must be an int",
        ),
        (
            _manifest_only(
                lambda m: m["blocks"][0]["matrices"]["weight_ih_l0"].update(source_shape=[7])
            ),
            "source_shape",
        ),
    ],
)
def test_forged_consistent_files_are_refused(artifact, tmp_path, change, message):
    """Checksums in line with the edits: the topology checks, not the hashes, catch these."""
    with pytest.raises(InputError, match=message):
        load(_rewrite(artifact[2], tmp_path / "f.lfz", _consistent(change)))


@pytest.mark.parametrize("version", [99, 1.0, "1", True])
def test_wrong_version(artifact, tmp_path, version):
    def bump(manifest):
        manifest["version"] = version

    with pytest.raises(InputError, match=f"version {version!r}"):
        load(_rewrite(artifact[2], tmp_path / "v.lfz", lambda a: _with_manifest(a, bump)))


def test_save_is_atomic(artifact, tmp_path):
    _, cm, _ = artifact
    path = cm.save(tmp_path / "out.lfz")
    assert zipfile.is_zipfile(path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.lfz"]  # no temporary left behind


def test_cell_states_get_guard_bits_above_their_calibrated_range():
    """The cell state integrates over time: its format can hold 2^guard x the calibrated range."""
    torch.manual_seed(0)
    model = LSTM(5, 6, num_layers=2)
    x = torch.randn(2, 5, 5)
    plain = compress_model(model, density=0.5, num_pes=2, calibration=x)
    guarded = compress_model(model, density=0.5, num_pes=2, calibration=x, cell_guard_bits=1)
    assert (plain.settings["cell_guard_bits"], guarded.settings["cell_guard_bits"]) == (0, 1)
    before, after = plain.blocks[0].formats, guarded.blocks[0].formats
    for name in before:
        expected = before[name].frac - 1 if name.endswith(".cell") else before[name].frac
        assert (after[name].bits, after[name].frac) == (before[name].bits, expected), name
    with pytest.raises(InputError, match="cell_guard_bits"):
        compress_model(model, density=0.5, num_pes=2, calibration=x, cell_guard_bits=9)


def test_non_finite_weights_are_named_not_pruned_away():
    model = LSTM(3, 4)
    with torch.no_grad():
        model.weight_hh_l0[1, 2] = float("nan")
    with pytest.raises(InputError, match="<root>:weight_hh_l0: the weights hold NaN"):
        compress_model(model, density=0.5, num_pes=2)
