"""The CompressedModel (the IR every back end reads) and its ``.lfz`` file.

A ``.lfz`` file is a NumPy ``.npz`` archive, read with ``allow_pickle=False``, holding

* ``manifest.json``: a uint8 array with the UTF-8 JSON manifest (format name, version,
  source topology, every matrix's shape, format, density and per-PE counts, number of PEs,
  fixed-point formats, activation-unit description, and a sha256 of every array);
* ``manifest.sha256``: the hex digest of the manifest bytes;
* per block ``b``, weight matrix ``M`` and PE ``p``: ``b{b}/{M}/pe{p:03d}/values`` (int16),
  ``.../rel_index`` (uint8), ``.../col_ptr`` (int32), in the per-PE CSC of
  :mod:`lstmforge.compress.csc`;
* per block vector ``V`` (biases, peepholes): ``b{b}/{V}`` (int32 codes);
* LUT activation units: ``act/sigmoid`` and ``act/tanh`` (int32 codes).

The layout is documented field by field in ``docs/lfz-format.md``. :func:`load` validates
everything it reads and raises :class:`~lstmforge.errors.InputError` for a truncated,
tampered, or wrong-version file.

Versions: 1, and 2, which adds the optional ConvLSTM config keys ``input_kernel_size``
(input-to-state kernels that differ from the state-to-state ``kernel_size``) and
``row_padding`` (``"circular"``: the row axis wraps around). :meth:`CompressedModel.save`
writes the lowest version that holds the model, so every model without such a ConvLSTM gives
the same version 1 file as before; :func:`load` reads both and refuses a version 1 file that
carries a version 2 key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lstmforge.compress.csc import PECSC, decode, encode, pointer_bits
from lstmforge.engine.activation_units import ActivationConfig, ActivationUnits
from lstmforge.engine.fixed_point import QFormat, dequantize
from lstmforge.errors import InputError
from lstmforge.io import atomic_path, to_jsonable

FORMAT_NAME = "lstmforge-lfz"
FORMAT_VERSION = 2  # the newest version this lstmforge writes and reads
READABLE_VERSIONS = (1, 2)
INPUT_KERNEL_VERSION = 2  # first version with the ConvLSTM config key "input_kernel_size"
ROW_PADDING_VERSION = 2  # first version with the ConvLSTM config key "row_padding"
VERSIONED_CONVLSTM_KEYS = {
    "input_kernel_size": INPUT_KERNEL_VERSION,
    "row_padding": ROW_PADDING_VERSION,
}
ROW_PADDINGS = ("zeros", "circular")
BLOCK_KINDS = ("lstm", "convlstm", "linear")


@dataclass
class SparseMatrix:
    """A pruned, quantized weight matrix [rows, cols] split over PEs in per-PE CSC.

    ``source_shape`` is the parameter's shape in the float model (4-D for a convolution
    kernel, lowered to [out_channels, in_channels * k * k]).
    """

    shape: tuple[int, int]
    source_shape: tuple[int, ...]
    fmt: QFormat
    pes: list[PECSC]
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # back ends

    @classmethod
    def from_codes(
        cls, codes: np.ndarray, fmt: QFormat, num_pes: int, source_shape: tuple[int, ...]
    ) -> SparseMatrix:
        """Encode a dense matrix of weight codes."""
        return cls(tuple(codes.shape), tuple(source_shape), fmt, encode(codes, num_pes))

    @property
    def num_pes(self) -> int:
        return len(self.pes)

    def dense_codes(self, where: str = "matrix") -> np.ndarray:
        """The dense int64 code matrix (decoded, validated)."""
        return decode(self.pes, self.shape[0], self.shape[1], where)

    def dense(self) -> np.ndarray:
        """The dense float64 weights the codes stand for."""
        return dequantize(self.dense_codes(), self.fmt)

    @property
    def pointer_bits(self) -> int:
        """Width of one column-length word of this matrix's pointer memory (csc.pointer_bits)."""
        return pointer_bits(self.pes)

    @property
    def nonzeros_per_pe(self) -> list[int]:
        return [pe.nonzeros for pe in self.pes]

    @property
    def entries_per_pe(self) -> list[int]:
        return [pe.entries for pe in self.pes]

    @property
    def nonzeros(self) -> int:
        return sum(self.nonzeros_per_pe)

    @property
    def density(self) -> float:
        return self.nonzeros / (self.shape[0] * self.shape[1])


@dataclass
class FixedVector:
    """A vector (bias, peephole) of integer codes in format ``fmt``; any shape."""

    codes: np.ndarray
    fmt: QFormat

    def values(self) -> np.ndarray:
        return dequantize(self.codes, self.fmt)


@dataclass
class Block:
    """One compressed submodule: an LSTM/LSTMP stack, a ConvLSTM stack or a Linear layer.

    ``name`` is the submodule's qualified name in the source model ("" for the model itself);
    ``config`` its topology (see :func:`block_layout`); ``formats`` the activation formats:
    ``input``, and per layer k ``l{k}.cell`` and ``l{k}.output`` (recurrent blocks) or
    ``output`` (linear).
    """

    name: str
    kind: str
    config: dict[str, Any]
    matrices: dict[str, SparseMatrix]
    vectors: dict[str, FixedVector]
    formats: dict[str, QFormat]

    @property
    def output_format(self) -> QFormat:
        if self.kind == "linear":
            return self.formats["output"]
        return self.formats[f"l{self.config['num_layers'] - 1}.output"]


def block_layout(kind: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The weight matrices a block of this topology has: ``{name: (rows, cols)}``."""
    if kind == "linear":
        return {"weight": (config["out_features"], config["in_features"])}
    layout: dict[str, tuple[int, ...]] = {}
    for k in range(config["num_layers"]):
        if kind == "lstm":
            hidden, proj = config["hidden_size"], config["proj_size"]
            out = proj or hidden
            layer_in = config["input_size"] if k == 0 else out
            layout[f"weight_ih_l{k}"] = (4 * hidden, layer_in)
            layout[f"weight_hh_l{k}"] = (4 * hidden, out)
            if proj:
                layout[f"weight_hr_l{k}"] = (proj, hidden)
        elif kind == "convlstm":
            state_ks, input_ks = convlstm_kernels(config)
            convlstm_row_padding(config)
            hidden, ks, kx = config["hidden_channels"][k], state_ks[k], input_ks[k]
            layer_in = config["in_channels"] if k == 0 else config["hidden_channels"][k - 1]
            if layer_in > 0:  # layer 0 of a forecaster may run without input
                layout[f"weight_x_l{k}"] = (4 * hidden, layer_in * kx * kx)
            layout[f"weight_h_l{k}"] = (4 * hidden, hidden * ks * ks)
        else:
            raise InputError(f"block kind: expected one of {BLOCK_KINDS}, got {kind!r}")
    return layout


def convlstm_kernels(config: dict[str, Any]) -> tuple[list[int], list[int]]:
    """``(state-to-state, input-to-state)`` kernel sizes per layer of a ConvLSTM config.

    ``input_kernel_size`` is optional (version 2); without it the input-to-state kernels are
    ``kernel_size``, as in version 1. Raises :class:`InputError` unless both are lists of one
    odd positive int per layer.
    """
    layers = config["num_layers"]
    state = config["kernel_size"]
    given = config.get("input_kernel_size")
    sizes = {"kernel_size": state, "input_kernel_size": state if given is None else given}
    for key, value in sizes.items():
        if (
            not isinstance(value, list)
            or len(value) != layers
            or not all(isinstance(k, int) and not isinstance(k, bool) for k in value)
            or not all(k >= 1 and k % 2 == 1 for k in value)
        ):
            raise InputError(
                f"ConvLSTM config {key}: expected a list of {layers} odd positive ints "
                f"(num_layers), got {value!r}"
            )
    return list(state), list(sizes["input_kernel_size"])


def convlstm_row_padding(config: dict[str, Any]) -> str:
    """How a ConvLSTM config pads the row axis: ``"zeros"`` or ``"circular"``.

    ``row_padding`` is optional (version 2); without it the padding is zeros, as in version 1.
    Raises :class:`InputError` for another value, or for circular padding whose widest kernel
    wraps more rows (k // 2) than the ``frame_size`` has.
    """
    padding = config.get("row_padding", "zeros")
    if not isinstance(padding, str) or padding not in ROW_PADDINGS:
        raise InputError(
            f"ConvLSTM config row_padding: expected 'zeros' or 'circular', got {padding!r}"
        )
    frame = config.get("frame_size")
    if padding == "circular" and frame:
        state_ks, input_ks = convlstm_kernels(config)
        widest = max(state_ks + input_ks)
        if widest // 2 > frame[0]:
            raise InputError(
                f"ConvLSTM config row_padding 'circular': kernel size {widest} wraps "
                f"{widest // 2} rows, the frame has {frame[0]}"
            )
    return padding


def _versioned_keys(blocks: list[Block]) -> list[tuple[str, int]]:
    """The version-2 ConvLSTM config keys these blocks carry, with their versions."""
    return [
        (key, version)
        for block in blocks
        if block.kind == "convlstm"
        for key, version in VERSIONED_CONVLSTM_KEYS.items()
        if key in block.config
    ]


def required_version(blocks: list[Block]) -> int:
    """The lowest ``.lfz`` version that describes these blocks (see the module docstring)."""
    return max((version for _, version in _versioned_keys(blocks)), default=1)


def vector_shapes(kind: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The vectors a block of this topology stores (biases, peepholes) and their shapes."""
    if kind == "linear":
        return {"bias": (config["out_features"],)} if config["bias"] else {}
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(config["num_layers"]):
        hidden = config["hidden_size"] if kind == "lstm" else config["hidden_channels"][k]
        if config["bias"]:
            shapes[f"bias_l{k}"] = (4 * hidden,)
        if config["peephole"]:  # LSTM: True; ConvLSTM: "pixel" or "channel"
            if kind == "lstm":
                peephole: tuple[int, ...] = (hidden,)
            elif config["peephole"] == "channel":
                peephole = (hidden, 1, 1)
            else:
                peephole = (hidden, *config["frame_size"])
            for gate in ("ci", "cf", "co"):
                shapes[f"weight_{gate}_l{k}"] = peephole
    return shapes


def format_names(kind: str, config: dict[str, Any]) -> list[str]:
    """The activation formats a block of this topology records."""
    if kind == "linear":
        return ["input", "output"]
    names = ["input"]
    for k in range(config["num_layers"]):
        names += [f"l{k}.cell", f"l{k}.output"]
    return names


@dataclass
class CompressedModel:
    """The intermediate representation: compressed blocks plus datapath settings.

    ``settings`` records how it was made (target density, weight/activation bits, balanced
    pruning, source model class); ``report`` holds figures computed at compression time
    (imbalance, footprint, calibration ranges) for the user.
    """

    blocks: list[Block]
    num_pes: int
    activation: ActivationConfig
    activation_tables: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Make every array read-only: the engine derives constants from them once (SELL
        layouts, kernel arguments, tables), so an edit must replace an object, never write
        into one (writing raises ``ValueError: assignment destination is read-only``)."""
        for array in self._owned_arrays():
            array.setflags(write=False)

    def __deepcopy__(self, memo: dict) -> CompressedModel:
        """A deep copy is read-only too (built through ``__init__``, not field by field)."""
        values = {f.name: copy.deepcopy(getattr(self, f.name), memo) for f in fields(self)}
        return CompressedModel(**values)

    def _owned_arrays(self):
        for block in self.blocks:
            for matrix in block.matrices.values():
                for pe in matrix.pes:
                    yield from (pe.values, pe.rel_index, pe.col_ptr)
            for vector in block.vectors.values():
                yield vector.codes
        yield from self.activation_tables.values()

    def block(self, name: str) -> Block:
        """The block compressed from the submodule with qualified name ``name``."""
        for block in self.blocks:
            if block.name == name:
                return block
        raise InputError(
            f"no compressed block named {name!r}; have {[b.name for b in self.blocks]}"
        )

    def multiplied_bits(self, block: Block) -> int:
        """Width of the widest value the PEs multiply by ``block``'s weights: its activation
        formats and, in an LSTMP layer, m_t = o_t ∘ tanh(c_t), the projection's input, which is
        in the element-wise unit's output format G (docs/fixed-point.md)."""
        bits = max(f.bits for f in block.formats.values())
        if block.kind == "lstm" and block.config["proj_size"] > 0:
            bits = max(bits, self.activation.output_format.bits)
        return bits

    def activation_units(self) -> ActivationUnits:
        """The sigmoid/tanh units described by the artifact (tables as stored)."""
        return ActivationUnits(self.activation, self.activation_tables or None)

    def manifest(self) -> dict[str, Any]:
        """The manifest without the array checksums (those are added by :meth:`save`)."""
        return {
            "format": FORMAT_NAME,
            "version": required_version(self.blocks),
            "num_pes": self.num_pes,
            "settings": self.settings,
            "activation": self.activation.to_dict(),
            "blocks": [_block_manifest(b) for b in self.blocks],
            "report": self.report,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the artifact, by its key in the ``.npz``."""
        out: dict[str, np.ndarray] = {}
        for b, block in enumerate(self.blocks):
            for name, matrix in block.matrices.items():
                for p, pe in enumerate(matrix.pes):
                    key = f"b{b}/{name}/pe{p:03d}"
                    out[f"{key}/values"] = pe.values.astype(np.int16)
                    out[f"{key}/rel_index"] = pe.rel_index.astype(np.uint8)
                    out[f"{key}/col_ptr"] = pe.col_ptr.astype(np.int32)
            for name, vector in block.vectors.items():
                out[f"b{b}/{name}"] = vector.codes.astype(np.int32)
        for name, table in self.activation_tables.items():
            out[f"act/{name}"] = table.astype(np.int32)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the ``.lfz`` file atomically; returns its path."""
        arrays = self.arrays()
        manifest = self.manifest()
        manifest["arrays"] = {
            key: {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": _digest(a)}
            for key, a in arrays.items()
        }
        text = json.dumps(to_jsonable(manifest), sort_keys=True).encode()
        arrays["manifest.json"] = np.frombuffer(text, dtype=np.uint8)
        arrays["manifest.sha256"] = np.frombuffer(
            hashlib.sha256(text).hexdigest().encode(), np.uint8
        )
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return Path(path)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _block_manifest(block: Block) -> dict[str, Any]:
    return {
        "name": block.name,
        "kind": block.kind,
        "config": block.config,
        "formats": {k: f.to_dict() for k, f in block.formats.items()},
        "matrices": {
            name: {
                "shape": list(m.shape),
                "source_shape": list(m.source_shape),
                "format": m.fmt.to_dict(),
                "density": m.density,
                "nonzeros": m.nonzeros,
                "nonzeros_per_pe": m.nonzeros_per_pe,
                "entries_per_pe": m.entries_per_pe,
                "pointer_bits": m.pointer_bits,
            }
            for name, m in block.matrices.items()
        },
        "vectors": {
            name: {"shape": list(v.codes.shape), "format": v.fmt.to_dict()}
            for name, v in block.vectors.items()
        },
    }


# ------------------------------------------------------------------------------------------
# loading and validation
# ------------------------------------------------------------------------------------------


def load(path: str | Path) -> CompressedModel:
    """Read and validate a ``.lfz`` file (see the module docstring for what is checked)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: artifact file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        KeyError,
        NotImplementedError,  # a corrupt header naming an unknown compression method
    ) as err:
        raise InputError(
            f"{path}: not a readable .lfz archive ({type(err).__name__}: {err})"
        ) from None
    for key in ("manifest.json", "manifest.sha256"):
        if key not in arrays:
            raise InputError(f"{path}: not a .lfz artifact (no {key})")
    text = arrays.pop("manifest.json").tobytes()
    digest = arrays.pop("manifest.sha256").tobytes().decode("ascii", "replace")
    if hashlib.sha256(text).hexdigest() != digest:
        raise InputError(f"{path}: manifest checksum mismatch (file tampered or corrupt)")
    try:
        manifest = json.loads(text)
    except ValueError:
        raise InputError(f"{path}: manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise InputError(f"{path}: not a {FORMAT_NAME} artifact")
    version = manifest.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise InputError(
            f"{path}: .lfz version {version!r}, this lstmforge reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    _check_arrays(path, manifest.get("arrays"), arrays)
    try:
        model = _build(path, manifest, arrays)
    except InputError:
        raise
    except (KeyError, TypeError, IndexError, ValueError) as err:
        raise InputError(
            f"{path}: manifest missing or malformed field ({type(err).__name__}: {err})"
        ) from None
    for key, since in _versioned_keys(model.blocks):
        if since > version:
            raise InputError(
                f"{path}: .lfz version {version} has no ConvLSTM {key} (it came with "
                f"version {since})"
            )
    return model


def _check_arrays(path: Path, listed: Any, arrays: dict[str, np.ndarray]) -> None:
    if not isinstance(listed, dict):
        raise InputError(f"{path}: manifest has no array table")
    if set(listed) != set(arrays):
        missing, extra = sorted(set(listed) - set(arrays)), sorted(set(arrays) - set(listed))
        raise InputError(
            f"{path}: arrays do not match the manifest (missing {missing[:3]}, extra {extra[:3]})"
        )
    for key, array in arrays.items():
        info = listed[key]
        if str(array.dtype) != info.get("dtype") or list(array.shape) != info.get("shape"):
            raise InputError(
                f"{path}: array {key} is {array.dtype}{list(array.shape)}, manifest says {info.get('dtype')}{info.get('shape')}"
            )
        if _digest(array) != info.get("sha256"):
            raise InputError(f"{path}: array {key} checksum mismatch (file tampered or corrupt)")


def _build(path: Path, manifest: dict, arrays: dict[str, np.ndarray]) -> CompressedModel:
    num_pes = manifest["num_pes"]
    if type(num_pes) is not int or num_pes < 1:
        raise InputError(f"{path}: num_pes must be an integer >= 1, got {num_pes!r}")
    if not isinstance(manifest["blocks"], list) or not manifest["blocks"]:
        raise InputError(f"{path}: the manifest lists no blocks")
    activation = ActivationConfig.from_dict(manifest["activation"])
    tables = {
        k.removeprefix("act/"): a.astype(np.int64)
        for k, a in arrays.items()
        if k.startswith("act/")
    }
    blocks = [
        _build_block(path, b, entry, arrays, num_pes) for b, entry in enumerate(manifest["blocks"])
    ]
    model = CompressedModel(
        blocks, num_pes, activation, tables, manifest["settings"], manifest["report"]
    )
    model.activation_units()  # validates the tables against the description
    return model


def _build_block(
    path: Path, b: int, entry: dict, arrays: dict[str, np.ndarray], num_pes: int
) -> Block:
    kind, config = entry["kind"], entry["config"]
    where = f"{path} block {b} ({entry['name']!r})"
    if kind not in BLOCK_KINDS:
        raise InputError(f"{where}: kind must be one of {BLOCK_KINDS}, got {kind!r}")
    try:
        layout = block_layout(kind, config)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    if set(entry["matrices"]) != set(layout):
        raise InputError(
            f"{where}: matrices {sorted(entry['matrices'])}, topology needs {sorted(layout)}"
        )
    formats = {k: QFormat.from_dict(f, f"{where} format {k}") for k, f in entry["formats"].items()}
    if set(formats) != set(format_names(kind, config)):
        raise InputError(
            f"{where}: formats {sorted(formats)}, expected {format_names(kind, config)}"
        )
    matrices = {}
    for name, info in entry["matrices"].items():
        shape = tuple(info["shape"])
        if shape != layout[name]:
            raise InputError(
                f"{where} {name}: shape {list(shape)}, topology needs {list(layout[name])}"
            )
        fmt = QFormat.from_dict(info["format"], f"{where} {name} format")
        pes = [
            PECSC(
                arrays[f"b{b}/{name}/pe{p:03d}/values"],
                arrays[f"b{b}/{name}/pe{p:03d}/rel_index"],
                arrays[f"b{b}/{name}/pe{p:03d}/col_ptr"],
            )
            for p in range(num_pes)
        ]
        source_shape = tuple(info["source_shape"])
        if math.prod(source_shape) != shape[0] * shape[1]:
            raise InputError(
                f"{where} {name}: source_shape {list(source_shape)} does not hold the lowered "
                f"{list(shape)}"
            )
        matrix = SparseMatrix(shape, source_shape, fmt, pes)
        codes = matrix.dense_codes(f"{where} {name}")  # validates the CSC structure
        if codes.size and (codes.min() < fmt.min_code or codes.max() > fmt.max_code):
            raise InputError(f"{where} {name}: codes outside the {fmt.bits}-bit range")
        if matrix.nonzeros_per_pe != info["nonzeros_per_pe"]:
            raise InputError(f"{where} {name}: per-PE nonzero counts differ from the manifest")
        if info.get("pointer_bits", matrix.pointer_bits) != matrix.pointer_bits:  # optional field
            raise InputError(
                f"{where} {name}: pointer_bits {info['pointer_bits']} in the manifest, the "
                f"columns need {matrix.pointer_bits}"
            )
        matrices[name] = matrix
    shapes = vector_shapes(kind, config)
    if set(entry["vectors"]) != set(shapes):
        raise InputError(f"{where}: vectors {sorted(entry['vectors'])}, expected {list(shapes)}")
    vectors = {}
    for name, info in entry["vectors"].items():
        fmt = QFormat.from_dict(info["format"], f"{where} {name} format")
        codes = arrays[f"b{b}/{name}"].astype(np.int64)
        if codes.shape != shapes[name]:
            raise InputError(
                f"{where} {name}: shape {list(codes.shape)}, topology needs {list(shapes[name])}"
            )
        if codes.size and (codes.min() < fmt.min_code or codes.max() > fmt.max_code):
            raise InputError(f"{where} {name}: codes outside the {fmt.bits}-bit range")
        vectors[name] = FixedVector(codes, fmt)
    return Block(entry["name"], kind, config, matrices, vectors, formats)
