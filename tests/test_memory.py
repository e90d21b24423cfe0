"""Memory binding: macro libraries read from their liberties and LEFs, the choice between
macros and flip-flops, the configuration fields, and bad libraries and bindings."""

import re
import shutil
from pathlib import Path

import pytest

from rcm_gen.errors import UserError
from rcm_gen.flows.macros import (
    SHIPPED_LIBRARIES,
    find_macro_library,
    instantiated_macros,
    load_macro_library,
    macro_library_file,
    model_verilog,
)
from rcm_gen.gateware.buffers import Buffer
from rcm_gen.gateware.memory import MemoryBinding, fpga_binding, plan_memory, resolve_binding
from rcm_gen.generate import to_verilog
from rcm_gen.presets import apply_overrides, preset

LIB_DIR = macro_library_file("sky130_sram").parent


def _grep(path: Path, pattern: str) -> str:
    return re.search(pattern, path.read_text(), re.M).group(1)


def test_shipped_library_read_from_its_files():
    lib = load_macro_library("sky130_sram")
    assert lib.name == "sky130_sram" and lib.technology == "sky130"
    assert len(lib.macros) == 3
    for m in lib.macros:
        # the parser's figures are those the files state
        assert m.area_um2 == float(_grep(m.liberty, r"^\s*area\s*:\s*([0-9.]+)\s*;"))
        w, h = _grep(m.lef, r"^\s*SIZE\s+(.+?)\s*;").split(" BY ")
        assert m.size_um == (float(w), float(h))
        assert m.width("r_addr") == len(f"{m.words - 1:b}")
        assert m.width("rw_din") == m.width("r_dout") == m.bits
        assert m.width("rw_wmask") == m.bits // m.write_mask_bits
        assert m.liberty.parent == LIB_DIR and m.liberty.exists()
    assert (LIB_DIR / "LICENSE").exists() and (LIB_DIR / "README.md").exists()
    assert SHIPPED_LIBRARIES == ("sky130_sram",)


def test_library_goes_with_its_technology_and_corner():
    lib = load_macro_library("sky130_sram")
    assert lib.mismatch("sky130_fd_sc_hd__tt_025C_1v80", 1.8, 25.0) is None
    assert lib.mismatch("sky130_fd_sc_hd__ff_100C_1v95", 1.95, 100.0) == "is at 1.95 V, 100 C"
    assert lib.mismatch("osu018_stdcells", 1.8, 25.0) == "is not a sky130 library " \
        "(sky130_fd_sc_*)"
    assert find_macro_library("sky130_fd_sc_hd__tt_025C_1v80", 1.8, 25.0) == lib
    assert find_macro_library("osu018_stdcells", 1.8, 25.0) is None


def test_plans():
    lib = load_macro_library("sky130_sram")
    one = lib.macro("sky130_sram_1kbyte_1rw1r_32x256_8")
    # an exact fit is one macro; a small memory is cheaper in flip-flops
    exact = plan_memory(32, 256, "sram", lib)
    assert (exact.macro, exact.rows, exact.cols, exact.ff_bits) == (one, 1, 1, 0)
    assert plan_memory(32, 256, "auto", lib).macro is not None
    small = plan_memory(16, 32, "auto", lib)
    assert small.macro is None and small.ff_bits == 16 * 32
    assert plan_memory(16, 32, "sram", lib).macros == 1
    assert plan_memory(16, 32, "ff", lib).macro is None
    # a named macro, tiled by width and depth with the rest in flip-flops
    p = plan_memory(40, 600, one.name, lib)
    assert (p.rows, p.cols, p.macro_words, p.macro_bits) == (2, 1, 512, 32)
    assert (p.ff_col_bits, p.ff_row_words, p.ff_bits) == (8, 88, 512 * 8 + 88 * 40)
    assert p.describe() == f"sram 2x1 {one.name} + ff 512x8 + 88x40"
    # the chosen plan is the cheapest of the candidates
    for kind in ("sram", "auto"):
        best = plan_memory(64, 300, kind, lib)
        for m in lib.macros:
            assert best.area_um2 <= plan_memory(64, 300, m.name, lib).area_um2
    # without a library, everything is flip-flops with no estimate
    assert plan_memory(32, 256, "sram", None).macro is None
    assert plan_memory(32, 256, "sram", None).area_um2 is None


def test_binding_resolution():
    osu = ("osu018_stdcells", 1.8, 25.0)
    sky = ("sky130_fd_sc_hd__tt_025C_1v80", 1.8, 25.0)
    b = resolve_binding("auto", None, osu)
    assert b.library is None and b.note == (
        "memory=auto, liberty 'osu018_stdcells' has no macro library: flip-flops or latches")
    # a liberty with neither macros nor latch estimates: flip-flops
    assert resolve_binding("auto", None, ("my_cells", 1.8, 25.0)).note == (
        "memory=auto, but liberty 'my_cells' has no macro library: flip-flops")
    assert resolve_binding("sram", None, None).note == (
        "memory=sram without a macro library (macros unset): flip-flops")
    assert resolve_binding("sram", None, sky).library.name == "sky130_sram"
    assert resolve_binding("ff", "sky130_sram", sky).plan(32, 256).macro is None
    with pytest.raises(UserError, match=r"^macro library 'sky130_sram' \(sky130, tt, 1.8 V, "
                                        r"25 C\) does not go with liberty 'osu018_stdcells', "
                                        r"which is not a sky130 library \(sky130_fd_sc_\*\)$"):
        resolve_binding("sram", "sky130_sram", osu)
    with pytest.raises(UserError, match=r"^macro library 'sky130_sram' .* does not go with "
                                        r"liberty 'sky130_fd_sc_hd__ff_100C_1v95', which is "
                                        r"at 1.95 V, 100 C$"):
        resolve_binding("auto", "sky130_sram", ("sky130_fd_sc_hd__ff_100C_1v95", 1.95, 100.0))


@pytest.mark.parametrize("sets, exc, message", [
    (["memory=flash"], ValueError,
     r"Tile memory must be one of ff, latch, sram, auto, or a macro name with macros set, not "
     r"'flash'"),
    (["memory=3"], TypeError, r"Tile memory must be a string, not 3"),
    (["macros=sky999"], ValueError,
     r"Tile macros must be one of sky130_sram or a macro library file \(\.toml\), not "
     r"'sky999'"),
    (["macros=sky130_sram", "memory=sky130_sram_4kbyte"], ValueError,
     r"Tile memory must be one of ff, latch, sram, auto or a macro of sky130_sram "
     r"\(sky130_sram_1kbyte_1rw1r_32x256_8, sky130_sram_1kbyte_1rw1r_8x1024_8, "
     r"sky130_sram_2kbyte_1rw1r_32x512_8\), not 'sky130_sram_4kbyte'"),
    (["macros=/nonexistent/library.toml", "memory=m1"], ValueError,
     r"Tile macros: macros '/nonexistent/library.toml': file not found"),
])
def test_bad_memory_fields(sets, exc, message):
    with pytest.raises(exc, match=rf"^--set {re.escape(sets[-1])}: {message}$"):
        apply_overrides(preset("rcm-small"), sets)


def test_memory_fields_round_trip_and_reach_the_verilog():
    cfg = apply_overrides(preset("rcm-small"), ["macros=sky130_sram", "memory=sram"])
    assert cfg.to_dict()["memory"] == "sram" and cfg.to_dict()["macros"] == "sky130_sram"
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    text = to_verilog(cfg)
    used = [m.name for m in instantiated_macros(text)]
    assert used and all(n.startswith("sky130_sram_") for n in used)
    assert to_verilog(cfg) == text  # deterministic
    assert not instantiated_macros(to_verilog(preset("rcm-small")))
    # unset macros: no library without a liberty, so flip-flops
    assert not instantiated_macros(to_verilog(cfg.replace(macros=None)))
    assert instantiated_macros(to_verilog(cfg.replace(macros=None), (
        "sky130_fd_sc_hd__tt_025C_1v80", 1.8, 25.0)))


def _copy_library(tmp_path: Path, edit=None) -> Path:
    folder = tmp_path / "lib"
    shutil.copytree(LIB_DIR, folder)
    if edit:
        edit(folder)
    return folder / "library.toml"


def _edit_liberty(name: str, old: str, new: str):
    def edit(folder: Path) -> None:
        path = folder / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return edit


_LIB32 = "sky130_sram_1kbyte_1rw1r_32x256_8_TT_1p8V_25C.lib"


@pytest.mark.parametrize("edit, message", [
    (_edit_liberty(_LIB32, "area : 190712.55;", ""),
     r"macro library 'sky130_sram', macro 'sky130_sram_1kbyte_1rw1r_32x256_8': cell "
     r"'sky130_sram_1kbyte_1rw1r_32x256_8' in liberty '[^']+' has no area"),
    (_edit_liberty(_LIB32, "pin(csb1){", "pin(csb1_n){"),
     r"macro library 'sky130_sram', macro 'sky130_sram_1kbyte_1rw1r_32x256_8': liberty "
     r"'[^']+' has no pin 'csb1' \(port role r_csb\)"),
    (_edit_liberty(_LIB32, "bit_width : 8;", "bit_width : 7;"),
     r"macro library 'sky130_sram', macro 'sky130_sram_1kbyte_1rw1r_32x256_8': pin "
     r"'addr0' \(port role rw_addr\) must be an input of 8 bits, not an input of 7"),
    (_edit_liberty(_LIB32, "nom_voltage : 1.8;", "nom_voltage : 1.6;"),
     r"macro library 'sky130_sram', macro 'sky130_sram_1kbyte_1rw1r_32x256_8': liberty "
     r"'[^']+' is at 1.6 V, 25 C, not 1.8 V, 25 C"),
    (_edit_liberty("library.toml", 'rw_csb = "csb0"\n', ""),
     r"macro library 'sky130_sram', macro 'sky130_sram_1kbyte_1rw1r_32x256_8': no pin "
     r"named for port role rw_csb"),
])
def test_bad_macro_library(tmp_path, edit, message):
    path = _copy_library(tmp_path, edit)
    with pytest.raises(UserError, match=rf"^{message}$"):
        load_macro_library(str(path))


def test_user_library_file(tmp_path):
    path = _copy_library(tmp_path)
    lib = load_macro_library(str(path))
    assert lib.macro_names == load_macro_library("sky130_sram").macro_names
    cfg = apply_overrides(preset("rcm-small"), [f"macros={path}", "memory=sram"])
    assert instantiated_macros(to_verilog(cfg), (str(path),))


def test_model_has_the_macros_pins():
    lib = load_macro_library("sky130_sram")
    for m in lib.macros:
        text = model_verilog(m)
        assert text.startswith("// Behavioural model of " + m.name)
        for _, pin, width in m.pins:
            vector = "" if width == 1 else rf"\[{width - 1}:0\] "
            assert re.search(rf"^\s*(input|output reg)\s+{vector}{pin},?$", text, re.M), pin


def test_buffer_parameters():
    with pytest.raises(TypeError, match=r"^Buffer transparent must be a bool, not 1$"):
        Buffer(8, 4, transparent=1)
    with pytest.raises(TypeError, match=r"^Buffer binding must be a MemoryBinding, not 'ff'$"):
        Buffer(8, 4, binding="ff")
    with pytest.raises(ValueError, match=r"^Buffer depth must be at least 1, not 0$"):
        Buffer(8, 0)
    b = Buffer(8, 4, transparent=True, binding=MemoryBinding())
    assert b.transparent and b.plan().macro is None


def test_fpga_buffers_are_whole_memories():
    """On an FPGA whose RAM Yosys chooses (memory ff, latch, auto), every buffer is one
    memory of its whole shape, not cut into the standard-cell flow's 64-word flip-flop
    blocks with a row multiplexer after each block RAM."""
    for kind in ("ff", "latch", "auto"):
        plan = fpga_binding(kind).plan(16, 288)
        assert plan.ram_style == "" and plan.describe() == "fpga any 288x16"
    text = to_verilog(preset("rcm-small"), fpga=True)
    buffers = re.findall(r"^module \S*__buffer_(\d+x\d+)", text, re.M)
    blocks = re.findall(r"^module \S*__ff_block_(\d+x\d+)", text, re.M)
    assert buffers and sorted(blocks) == sorted(buffers)


def test_latch_plans_and_the_auto_choice():
    """``latch`` plans a latch memory whatever the library; ``auto`` takes the smallest
    estimate among flip-flops, latches and macros, and among estimates within
    AUTO_AREA_MARGIN of it the plan that clocks the fewest cells when idle."""
    from rcm_gen.gateware.memory import AUTO_AREA_MARGIN, STDCELL_BIT_AREAS

    lib = load_macro_library("sky130_sram")
    sky = STDCELL_BIT_AREAS["sky130_fd_sc_hd__*"]
    p = plan_memory(16, 288, "latch", None)
    assert p.latch and p.macro is None and p.area_um2 is None
    assert p.describe() == "latch 288x16"
    assert plan_memory(16, 1, "latch", None).latch is False  # one word: a register
    # sky130: latches beat flip-flops; a large buffer goes to macros
    small = plan_memory(16, 288, "auto", lib, sky)
    assert small.latch and small.area_um2 == pytest.approx(16 * 288 * sky["latch"])
    big = plan_memory(256, 576, "auto", lib, sky)
    assert big.macro is not None
    assert big.area_um2 < plan_memory(256, 576, "latch", lib, sky).area_um2
    # without latch estimates (a library rcm_gen has no figure for), auto is as before
    assert not plan_memory(16, 288, "auto", lib).latch
    # the near-tie rule: latches within the margin of flip-flops win on idle clocking
    close = {"ff": 10.0, "latch": 10.0 * (1 + AUTO_AREA_MARGIN / 2)}
    tie = plan_memory(16, 64, "auto", None, close)
    assert tie.latch and tie.clocked < 16 * 64
    far = {"ff": 10.0, "latch": 10.0 * (1 + 2 * AUTO_AREA_MARGIN)}
    assert not plan_memory(16, 64, "auto", None, far).latch
    # OSU 0.18 um (no macros): latches
    osu = resolve_binding("auto", None, ("osu018_stdcells", 1.8, 25.0))
    assert osu.plan(16, 288).describe() == "latch 288x16"
    assert resolve_binding("latch", None, None).plan(32, 8).latch


def test_latch_memory_verilog_lints_clean(tmp_path):
    """A tile with latch buffers: Verilator lint and Yosys check clean, as simulators read
    it and as synthesis reads it (with the integrated clock-gating cell)."""
    from rcm_gen.flows.lint import lint_verilator, lint_yosys
    from rcm_gen.flows.yosys import run_yosys
    from rcm_gen.gateware.memory import MemoryPlatform
    from rcm_gen.generate import build_component
    from rcm_gen.hierarchy import render

    cfg = apply_overrides(preset("rcm-small"), [
        "p=2", "tm=2", "tn=1", "tr=2", "tc=2", "k_max=3", "s_max=1", "mac.width=8",
        "memory=latch"])
    path = tmp_path / "rcm_tile.v"
    path.write_text(to_verilog(cfg))
    assert "latch_block_" in path.read_text()
    for lint in (lint_yosys, lint_verilator):
        r = lint(path, "rcm_tile", tmp_path / f"{lint.__name__}.log")
        assert r.clean, r.messages
    gate = ("sky130_fd_sc_hd__dlclkp_1", "CLK", "GATE", "GCLK")
    binding = resolve_binding("latch", None, ("sky130_fd_sc_hd__tt_025C_1v80", 1.8, 25.0),
                              gate)
    text = render(build_component(cfg), "rcm_tile", MemoryPlatform(binding)).text
    assert text.count("sky130_fd_sc_hd__dlclkp_1 gate") > 0
    synth = tmp_path / "synth.v"
    synth.write_text(text)
    stub = tmp_path / "cells.v"
    stub.write_text("(* blackbox *)\nmodule sky130_fd_sc_hd__dlclkp_1 (CLK, GATE, GCLK);\n"
                    "  input CLK, GATE;\n  output GCLK;\nendmodule\n")
    log = run_yosys([f"read_verilog -lib {stub}", f"read_verilog {synth}",
                     "hierarchy -check -top rcm_tile", "proc", "check -assert"],
                    tmp_path / "check.log")
    assert "Latch inferred" in log  # the latches, not the gates (cells in synthesis)
