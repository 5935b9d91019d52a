"""Accelerator configuration: the shipped preset, overrides, and clear errors for bad files."""

import pytest

from lstmforge.errors import InputError
from lstmforge.hw import load_config, load_preset
from lstmforge.hw.sim.config import preset_names


def test_ese_preset_matches_the_paper():
    config = load_preset("ese-ku060")
    assert "ese-ku060" in preset_names()
    assert (config.clock_mhz, config.channels, config.pes_per_channel) == (200.0, 32, 32)
    assert (config.weight_bits, config.index_bits, config.activation_bits) == (12, 4, 16)
    assert config.entry_bits == 16
    assert config.bytes_per_cycle == pytest.approx(20.48e9 / 200e6)


def test_config_file_starts_from_a_preset(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("preset: ese-ku060\npes_per_channel: 4\nfifo_depth: 2\n")
    config = load_config(path)
    assert (config.pes_per_channel, config.fifo_depth, config.clock_mhz) == (4, 2, 200.0)
    assert config.replace(channels=3).channels == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("preset: ese-ku060\nfifo_depth: 0\n", "'fifo_depth' must be an integer >= 1"),
        ("preset: ese-ku060\nfifo_depth: 2.5\n", "'fifo_depth' must be an integer"),
        ("preset: ese-ku060\nmemory_bandwidth_gbs: 0\n", "'memory_bandwidth_gbs' must be > 0"),
        ("preset: ese-ku060\nclock_mhz: -1\n", "'clock_mhz' must be > 0"),
        ("preset: ese-ku060\nclock_mhz: .inf\n", "'clock_mhz' must be a finite number"),
        ("preset: ese-ku060\nmemory_bandwidth_gbs: .nan\n", "must be a finite number"),
        ("preset: ese-ku060\nfifo_dept: 4\n", "unknown config field(s) ['fifo_dept']"),
        ("clock_mhz: 200\n", "missing config field(s)"),
        ("preset: ese-ku060\nweight_storage: cache\n", "'weight_storage' must be one of"),
        ("preset: ese-ku060\nweight_storage: onchip\n", "needs onchip_weight_kib > 0"),
        ("preset: ese-ku060\nindex_bits: 9\n", "'index_bits' must be <= 8"),
        ("preset: ese-ku060\noverlap_frames: 1\n", "'overlap_frames' must be true or false"),
        ("preset: nope\n", "unknown simulator preset 'nope'"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("a: [1,\n", "not valid YAML"),
    ],
)
def test_bad_config_files_name_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value) or "preset" in message


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "absent.yaml")
