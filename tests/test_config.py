import json
import re

import pytest

from rcm_gen.config import MacConfig, signed_bits
from rcm_gen.presets import PRESETS, apply_overrides, config_from_dict, preset


def test_defaults_and_derived_widths():
    cfg = MacConfig()
    assert cfg.width == 16 and cfg.lanes == (1, 2, 4) and cfg.arch == "booth"
    assert [cfg.lane_width(n) for n in cfg.lanes] == [16, 8, 4]
    # 17-bit (unsigned-capable) x 16-bit signed product: 2W bits
    assert cfg.product_width_for(1) == 32
    # two 8x8 products (unsigned activations: 0..255 times -128..127) summed
    assert cfg.product_width_for(2) == signed_bits(2 * 255 * -128, 2 * 128 * 128)
    assert cfg.product_width == 32
    assert cfg.accumulator_width == signed_bits(1024 * 65535 * -32768, 1024 * 2**30)
    assert cfg.max_reduction >= cfg.reduction


@pytest.mark.parametrize("cfg", [MacConfig(), MacConfig(width=8), MacConfig(acc_width=64),
                                 MacConfig(arch="fixed", lanes=(1,)),
                                 MacConfig(width=32, lanes=(1, 16))])
def test_json_round_trip(cfg):
    assert MacConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"width": 12}, ValueError,
     r"Datapath width must be a power of two from 4 to 32, not 12"),
    ({"width": "16"}, TypeError, r"Datapath width must be an integer, not '16'"),
    ({"lanes": (3,)}, ValueError,
     r"Lane count must be one of 1, 2, 4, 8 \(a power of two dividing width 16 with at "
     r"least 2 bits per lane\), not 3"),
    ({"width": 8, "lanes": (1, 8)}, ValueError,
     r"Lane count must be one of 1, 2, 4 \(a power of two dividing width 8 with at least "
     r"2 bits per lane\), not 8"),
    ({"lanes": (1, 1)}, ValueError, r"Lane set must not repeat a lane count, not \[1, 1\]"),
    ({"lanes": ()}, TypeError, r"Lane set must be a non-empty list of integers, not \(\)"),
    ({"arch": "wallace"}, ValueError,
     r"Multiplier architecture must be one of booth, ppa, fixed, not 'wallace'"),
    ({"arch": "fixed"}, ValueError,
     r"Lane set of the fixed architecture must be \[1\], not \[1, 2, 4\]"),
    ({"acc_width": 20}, ValueError,
     r"Accumulator width must be from 42 \(to hold a reduction of 1024\) to 128, not 20"),
    ({"pipeline": 3}, ValueError, r"Pipeline depth must be one of 0, 1, 2, not 3"),
    ({"reduction": 0}, ValueError,
     r"Accumulator reduction must be from 1 to 16777216, not 0"),
])
def test_validation_messages(kwargs, exc, message):
    with pytest.raises(exc, match=rf"^{message}$"):
        MacConfig(**kwargs)


def test_lanes_for_bits():
    cfg = MacConfig()
    assert cfg.lanes_for_bits(4, 4) == 4
    assert cfg.lanes_for_bits(8, 3) == 2
    assert cfg.lanes_for_bits(9, 1) == 1
    assert MacConfig(lanes=(1, 2)).lanes_for_bits(4, 4) == 2
    with pytest.raises(ValueError, match=r"^Operand bits must be at most 16, not 17$"):
        cfg.lanes_for_bits(17, 8)


def test_presets_and_fixed_twin():
    assert preset("mac16").fixed_twin() == preset("mac16-fixed")
    for name in PRESETS:
        assert preset(name).to_dict()["kind"] in ("mac", "tile")
    with pytest.raises(ValueError, match=r"^Preset must be one of .*, not 'mac99'$"):
        preset("mac99")


def test_overrides():
    cfg = apply_overrides(preset("mac16"), ["arch=ppa", "lanes=1,2", "acc_width=null",
                                            "pipeline=2"])
    assert cfg == MacConfig(arch="ppa", lanes=(1, 2), pipeline=2)
    assert apply_overrides(cfg, ["lanes=[1,4]"]).lanes == (1, 4)
    with pytest.raises(ValueError, match=re.escape(
            "--set foo=1: Configuration key must be one of width, lanes, arch, reduction, "
            "acc_width, pipeline, not 'foo'")):
        apply_overrides(cfg, ["foo=1"])
    with pytest.raises(TypeError, match=re.escape(
            "--set width=abc: Datapath width must be an integer, not 'abc'")):
        apply_overrides(cfg, ["width=abc"])
    with pytest.raises(ValueError, match=re.escape("--set must be KEY=VALUE, not 'width'")):
        apply_overrides(cfg, ["width"])
