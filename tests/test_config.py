import json
import re

import pytest

from rcm_gen.config import MacConfig, MacMode, signed_bits
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
     r"Multiplier architecture must be one of booth, ppa, fusion, fixed, dsp, not "
     r"'wallace'"),
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
            "acc_width, pipeline, brick, modes, clock_gating, dsp_block, not 'foo'")):
        apply_overrides(cfg, ["foo=1"])
    with pytest.raises(TypeError, match=re.escape(
            "--set width=abc: Datapath width must be an integer, not 'abc'")):
        apply_overrides(cfg, ["width=abc"])
    with pytest.raises(ValueError, match=re.escape("--set must be KEY=VALUE, not 'width'")):
        apply_overrides(cfg, ["width"])


# -- modes and the fusion architecture ----------------------------------------------------------

FUSION = MacConfig(arch="fusion", lanes=(1, 2, 4, 8))


def test_fusion_modes_and_word_widths():
    assert preset("mac16-fusion") == FUSION and FUSION.brick_bits == 2
    names = [m.name for m in FUSION.mac_modes]
    assert names == [f"{a}x{w}" for a in (16, 8, 4, 2) for w in (16, 8, 4, 2)]
    for m in FUSION.mac_modes:
        assert m.products == (16 // m.act_bits) * (16 // m.weight_bits)
        assert (m.act_lanes, m.weight_lanes) == (16 // m.act_bits, 16 // m.weight_bits)
        # a mode uses weight_lanes W-bit activation blocks and act_lanes weight blocks
        assert m.act_word_bits == 16 * m.weight_lanes
        assert m.weight_word_bits == 16 * m.act_lanes
    assert FUSION.mode(2, 2).products == 64 and FUSION.mode(8, 4).products == 8
    assert FUSION.act_word_bits == FUSION.weight_word_bits == 128
    # the words follow the modes: 8-bit activations with 4-bit weights at the narrowest
    sub = FUSION.replace(modes=("8x8", "8x4", "16x16"))
    assert sub.modes == ("16x16", "8x8", "8x4")  # normalised, widest first
    assert (sub.act_word_bits, sub.weight_word_bits) == (64, 32)
    # Sum-Together and fixed MACs: W-bit words, N products in N-lane mode
    for cfg in (MacConfig(), MacConfig(arch="ppa"), MacConfig(arch="fixed", lanes=(1,))):
        assert cfg.act_word_bits == cfg.weight_word_bits == 16
        assert [(m.name, m.products) for m in cfg.mac_modes] == [
            (f"{16 // n}x{16 // n}", n) for n in cfg.lanes]


def test_mode_for_bits():
    # the fastest mode that holds both widths: fusion gains from narrow weights alone
    assert FUSION.mode_for_bits(8, 4) == MacMode.fusion_mode(16, 8, 4)
    assert FUSION.products_per_cycle(8, 4) == 8
    assert FUSION.products_per_cycle(8, 2) == 16
    assert FUSION.products_per_cycle(3, 5) == 4 * 2   # held in 4x8 lanes
    assert FUSION.products_per_cycle(16, 1) == 8
    # Sum-Together: the symmetric mode of the wider operand (no gain from asymmetry)
    booth = MacConfig()
    for a, w, n in ((8, 4, 2), (4, 8, 2), (4, 4, 4), (16, 2, 1), (3, 3, 4)):
        assert booth.mode_for_bits(a, w) == MacMode.lane_mode(16, n)
        assert booth.lanes_for_bits(a, w) == n  # the lane-count path agrees
    assert MacConfig(arch="fixed", lanes=(1,)).products_per_cycle(2, 2) == 1
    # a subset of modes: the fastest one that holds both; ties to narrower activations
    sub = FUSION.replace(modes=("16x16", "8x4", "4x8"))
    assert sub.mode_for_bits(4, 4).name == "4x8" and sub.mode_for_bits(8, 8).name == "16x16"
    with pytest.raises(ValueError, match=r"^Activation bits must be from 1 to 16, not 17$"):
        FUSION.mode_for_bits(17, 8)
    with pytest.raises(ValueError, match=r"^Weight bits must be from 1 to 16, not 0$"):
        FUSION.mode_for_bits(8, 0)
    with pytest.raises(ValueError, match=r"^Operand bits 16x8 must fit one of the modes "
                                         r"8x8, 8x4$"):
        FUSION.replace(modes=("8x8", "8x4")).mode_for_bits(16, 8)
    with pytest.raises(ValueError, match=r"^Lane count applies to booth, ppa and fixed MACs; "
                                         r"a fusion MAC's modes are activation x weight "
                                         r"pairs \(mode_for_bits\)$"):
        FUSION.lanes_for_bits(8, 8)


def test_weight_order_pairs_activation_blocks_with_weight_lanes():
    m = FUSION.mode(8, 4)  # 2 activations per block, 4 blocks; 4 weights per block, 2 blocks
    assert m.weight_order() == (0, 2, 4, 6, 1, 3, 5, 7)
    assert MacConfig().mode(8, 8).weight_order() == (0, 1)
    for md in FUSION.mac_modes:
        assert sorted(md.weight_order()) == list(range(md.products))


def test_fusion_product_and_accumulator_widths():
    # the widest dot product is the 16x16 one; the narrow modes sum many small products
    assert FUSION.product_width == 32
    lo, hi = FUSION.product_range(FUSION.mode(2, 2), False)
    assert (lo, hi) == (64 * 3 * -2, 64 * 3 * 1)
    assert FUSION.product_range(2, True) == (4 * -128 * 127, 4 * 128 * 128)  # 8x8 lanes
    assert FUSION.product_bounds == (65535 * -32768, 65535 * 32767)
    assert FUSION.accumulator_width == MacConfig().accumulator_width


@pytest.mark.parametrize("changes, exc, message", [
    ({"brick": 3}, ValueError,
     r"Brick size must be one of 2, 4, 8 \(a power of two dividing width 16, at most half "
     r"of it\), not 3"),
    ({"brick": 16}, ValueError, r"Brick size must be one of 2, 4, 8 .*, not 16"),
    ({"brick": "2"}, TypeError, r"Brick size must be an integer, not '2'"),
    ({"brick": 4}, ValueError,
     r"Lane count of the fusion architecture must be one of 1, 2, 4 \(16/N bits a multiple "
     r"of brick 4\), not 8"),
    ({"modes": ("3x4",)}, ValueError,
     r"Fusion mode activation bits must be one of 16, 8, 4, 2 \(multiples of brick 2 up to "
     r"width 16: the lane widths of lanes 1, 2, 4, 8\), not 3 in '3x4'"),
    ({"modes": ("8x32",)}, ValueError,
     r"Fusion mode weight bits must be one of 16, 8, 4, 2 .*, not 32 in '8x32'"),
    ({"modes": ("8by4",)}, ValueError,
     r"Fusion mode must be a string \"AxW\" \(activation bits x weight bits\), "
     r"not '8by4'"),
    ({"modes": ("8x4", "8x4")}, ValueError,
     r"Fusion mode list must not repeat a mode, not \['8x4', '8x4'\]"),
    ({"modes": ()}, TypeError,
     r"Fusion mode list must be a non-empty list of \"AxW\" strings, not \(\)"),
    ({"arch": "booth", "brick": 2}, ValueError,
     r"Brick size applies to arch fusion, not arch 'booth' \(brick 2\)"),
    ({"arch": "ppa", "modes": ("8x4",)}, ValueError,
     r"Mode list applies to arch fusion \(booth, ppa, dsp and fixed run the symmetric modes of "
     r"their lanes\), not arch 'ppa' \(modes \('8x4',\)\)"),
])
def test_fusion_validation_messages(changes, exc, message):
    with pytest.raises(exc, match=rf"^{message}$"):
        FUSION.replace(**changes)


def test_fusion_json_round_trip_and_stable_hashes():
    for cfg in (FUSION, FUSION.replace(brick=4, lanes=(1, 2, 4)),
                FUSION.replace(modes=("8x8", "8x2"))):
        assert MacConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert FUSION.replace(modes=("8x8", "8x2")).to_dict()["modes"] == ["8x8", "8x2"]
    # unset fusion fields are not written: other design points keep their JSON and hash
    assert "brick" not in preset("mac16").to_dict() and "modes" not in FUSION.to_dict()
    assert FUSION.fixed_twin() == preset("mac16-fixed")
    # --set takes a comma-separated mode list
    cfg = apply_overrides(preset("mac16-fusion"), ["modes=8x8,4x2", "brick=2"])
    assert cfg.modes == ("8x8", "4x2") and cfg.brick == 2


def test_dsp_spacing():
    """The packed fields of the dsp architecture's 4-lane mode: wide enough for a 4-term dot
    product of W/4-bit lanes read with a rounding bit (W=16: [-480, 420] needs 10 bits)."""
    assert [MacConfig(width=w, arch="dsp").dsp_spacing for w in (8, 16, 32)] == [6, 10, 18]
    assert MacConfig(width=16, arch="dsp").product_bounds_for(4) == (-480, 420)
    assert MacConfig(width=16, arch="dsp", lanes=(1, 2)).dsp_spacing is None
    assert MacConfig(width=16).dsp_spacing is None


def test_clock_gating_key():
    """``clock_gating`` is on by default, written to JSON only when off (design points
    made before it keep their hash), reaches the tile's MAC, and takes booleans only."""
    from rcm_gen.generate import config_hash
    from rcm_gen.tile.config import TileConfig

    mac = preset("mac16")
    assert mac.clock_gating is True and "clock_gating" not in mac.to_dict()
    off = apply_overrides(mac, ["clock_gating=false"])
    assert off.clock_gating is False and off.to_dict()["clock_gating"] is False
    assert config_hash(off) != config_hash(mac)
    assert MacConfig.from_dict(off.to_dict()) == off
    tile = apply_overrides(preset("rcm-small"), ["clock_gating=false"])
    assert tile.mac.clock_gating is False
    assert TileConfig.from_dict(tile.to_dict()) == tile
    with pytest.raises(TypeError, match="clock_gating must be true or false, not 'maybe'"):
        apply_overrides(preset("rcm-small"), ["clock_gating=maybe"])
    with pytest.raises(TypeError, match="Clock gating must be true or false, not 1"):
        MacConfig(clock_gating=1)


@pytest.mark.parametrize("key", ["column_stage", "crossbar_stage"])
def test_stage_keys(key):
    """The array's optional register stages are off by default and then not written to
    JSON (design points made before them keep their hash), round-trip when on, reach a
    fixed twin, and take booleans only."""
    from rcm_gen.generate import config_hash
    from rcm_gen.tile.config import TileConfig

    tile = preset("rcm-8x8")
    assert getattr(tile, key) is False and key not in tile.to_dict()
    on = apply_overrides(tile, [f"{key}=true"])
    assert on.to_dict()[key] is True and config_hash(on) != config_hash(tile)
    assert TileConfig.from_dict(on.to_dict()) == on
    assert getattr(on.fixed_twin(), key) is True
    with pytest.raises(TypeError, match=f"Tile {key} must be true or false, not 'maybe'"):
        apply_overrides(tile, [f"{key}=maybe"])


def test_dsp_block_key():
    """``dsp_block``: ``generic`` by default and then not written to JSON; ``ecp5`` only
    for the dsp and fixed architectures with operands of at most 18 bits, and kept by a
    fixed twin; anything else refused with one line."""
    from rcm_gen.generate import config_hash

    mac = preset("mac16-dsp")
    assert mac.dsp_block == "generic" and "dsp_block" not in mac.to_dict()
    block = mac.replace(dsp_block="ecp5")
    assert block.to_dict()["dsp_block"] == "ecp5" and config_hash(block) != config_hash(mac)
    assert MacConfig.from_dict(block.to_dict()) == block
    assert block.fixed_twin() == mac.fixed_twin().replace(dsp_block="ecp5")
    tile = apply_overrides(preset("rcm-small"), ["mac.arch=dsp", "mac.dsp_block=ecp5"])
    assert tile.mac.dsp_block == "ecp5" and tile.fixed_twin().mac.dsp_block == "ecp5"
    with pytest.raises(ValueError, match=r"^DSP block must be one of generic, ecp5, not "
                                         r"'xilinx'$"):
        mac.replace(dsp_block="xilinx")
    with pytest.raises(ValueError, match=r"^DSP block ecp5 applies to arch dsp and fixed, "
                                         r"not arch 'booth'$"):
        preset("mac16").replace(dsp_block="ecp5")
    with pytest.raises(ValueError, match=r"^DSP block ecp5 takes operands of at most 18 "
                                         r"bits \(width at most 17\), not width 32$"):
        MacConfig(width=32, arch="dsp", dsp_block="ecp5")


def test_ppu_product_follows_the_mac_and_the_fixed_twin_keeps_it():
    """``ppu_product`` ``auto`` builds the post-processing product for DSP blocks in a
    tile of ``dsp`` MACs and as Booth rows otherwise; a fixed twin keeps the product of
    the tile it is the twin of; a default value leaves the configuration's dictionary
    (and so its cache keys) as before; a bad value is refused naming the choices."""
    from rcm_gen.presets import apply_overrides, preset

    tile = preset("rcm-small")
    assert tile.ppu_dsp_or_booth == "booth" and "ppu_product" not in tile.to_dict()
    assert tile.fixed_twin() == preset("rcm-small-fixed")
    dsp = apply_overrides(tile, ["mac.arch=dsp", "mac.pipeline=2"])
    assert dsp.ppu_dsp_or_booth == "dsp" and dsp.fixed_twin().ppu_dsp_or_booth == "dsp"
    fixed = apply_overrides(preset("rcm-small-fixed"), ["ppu_product=dsp"])
    assert fixed.ppu_dsp_or_booth == "dsp" and fixed.to_dict()["ppu_product"] == "dsp"
    with pytest.raises(ValueError, match="ppu_product must be one of auto, booth, dsp, not 'lut'"):
        apply_overrides(tile, ["ppu_product=lut"])
