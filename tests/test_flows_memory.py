"""Synthesis with memories: hierarchical against flat synthesis, SRAM macros as black boxes
on sky130 (area from their liberty, timed by OpenSTA), the flip-flop fallback on OSU
0.18 um, block RAM on ECP5, and bad macro libraries and bindings on the command line."""

import json
import re
from pathlib import Path

import pytest
from amaranth.back import verilog

from rcm_gen.flows import asic
from rcm_gen.flows.fpga import fpga_resources
from rcm_gen.flows.hier import (
    dedupe,
    instance_counts,
    output_fanouts,
    shared_verilog,
    split_modules,
)
from rcm_gen.flows.macros import load_macro_library
from rcm_gen.flows.synth import synthesize
from rcm_gen.gateware.buffers import Buffer
from rcm_gen.gateware.memory import MemoryBinding
from rcm_gen.presets import apply_overrides, preset

SKY130 = Path(__file__).resolve().parent / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
# a tile small enough to synthesize in seconds, with every kind of module
TINY = ["p=2", "tm=2", "tn=1", "tr=2", "tc=2", "k_max=3", "s_max=1", "mac.width=8"]


def _tiny(*sets):
    return apply_overrides(preset("rcm-small"), [*TINY, *sets])


def test_identical_modules_share_one_key():
    """On Verilog with a module per instance (Amaranth's own backend), equal modules get
    one key."""
    from rcm_gen.generate import build_component, platform_for

    def flat(cfg):
        return verilog.convert(build_component(cfg), name="rcm_tile", emit_src=False,
                               platform=platform_for(cfg))

    text = flat(preset("rcm-small"))
    modules = split_modules(text)
    key_of, text_of = dedupe(modules)
    assert key_of["rcm_tile.col0.mac0"] == key_of["rcm_tile.col0.mac1"]
    assert key_of["rcm_tile.col0.mac0.multiplier"] == key_of["rcm_tile.col0.mac1.multiplier"]
    # each output bank's word (two 46-bit accumulators) is cut into two equal slices, and
    # the two banks are the same module; the activation buffer's 288 words into four equal
    # blocks of 64 and one of 32
    slices = {key_of[f"rcm_tile.col0.out_buf{b}.mem{i}"] for b in (0, 1) for i in (0, 1)}
    assert len(slices) == 1
    assert key_of["rcm_tile.col0.out_buf0"] == key_of["rcm_tile.col0.out_buf1"]
    rows = {key_of[f"rcm_tile.act_buf.mem_r{r}"] for r in range(5)}
    assert len(rows) == 2 and key_of["rcm_tile.act_buf.mem_r4"] in rows
    # repeats: a MAC and its multiplier, three output slices and a bank, three activation
    # blocks, one weight block, one slice of each parameter memory (three of the input one)
    duplicates = 2 + 3 + 1 + 3 + 1 + 1 + 3
    assert len(set(key_of.values())) == len(modules) - duplicates
    assert key_of["rcm_tile.act_buf"] != key_of["rcm_tile.weight_buf"]
    # the fixed MAC is another module
    fixed = dedupe(split_modules(flat(preset("rcm-small-fixed"))))[0]
    assert fixed["rcm_tile.col0.mac0"] != key_of["rcm_tile.col0.mac0"]


def test_shared_macs_and_fanouts():
    """Every MAC, every column of the MAC array, every pixel unit of the controller and
    every buffer of the same shape is one module generated once; a MAC's sum reaches both
    output banks of its column, a buffer's read data one module."""
    from rcm_gen.generate import build_component, platform_for

    cfg = apply_overrides(preset("rcm-small"), ["tm=8", "p=8", "qr=2", "qc=2", "act_beat=4"])
    text = shared_verilog(build_component(cfg), "rcm_tile", platform_for(cfg))
    modules = split_modules(text)
    assert sorted(n for n in modules if "mac" in n) == [
        "rcm_tile__mac", "rcm_tile__mac__multiplier", "rcm_tile__mac_column"]
    # eight MACs in the one column module, four instances of it
    assert len(re.findall(r"^  rcm_tile__mac mac\d+ \(", text, re.M)) == 8
    assert len(re.findall(r"^  rcm_tile__mac_column col\d+ \(", text, re.M)) == 4
    assert len(re.findall(r"^  rcm_tile__pixel_unit pixel\d+ \(", text, re.M)) == 4
    # the activation banks are one module; so are the two output banks of a column
    banks = re.findall(r"^  (rcm_tile__buffer_\w+) (act_buf\d+|out_buf\d+) \(", text, re.M)
    assert len({m for m, i in banks if i.startswith("act")}) == 1
    assert len({m for m, i in banks if i.startswith("out")}) == 1
    assert len(banks) == cfg.act_banks + 2 and cfg.act_banks > 1
    fanouts = output_fanouts(modules)
    assert fanouts["rcm_tile__mac"] == 2
    assert fanouts[banks[0][0]] == 1


@pytest.mark.synth
@pytest.mark.long
def test_hierarchical_against_flat(tmp_path):
    cfg = _tiny()
    hier = synthesize(cfg, out_dir=tmp_path / "hier", clock_ns=10.0)
    flat = synthesize(cfg, out_dir=tmp_path / "flat", clock_ns=10.0, hierarchy="flat")
    assert hier["hierarchy"] == "hier" and flat["hierarchy"] == "flat"
    assert flat["area_by_group"] is None and flat["mac_array_area_um2"] is None
    assert sum(hier["area_by_group"].values()) == pytest.approx(hier["area_um2"])
    # logic is everything but memory; the MAC array is part of it
    assert hier["logic_area_um2"] + hier["memory"]["area_um2"] == pytest.approx(
        hier["area_um2"])
    assert 0 < hier["mac_array_area_um2"] < hier["logic_area_um2"]
    mods = hier["modules"]
    assert mods["distinct"] < mods["instances"]
    # flattening optimizes across module boundaries: never much larger, and the
    # hierarchical result is close
    assert hier["area_um2"] == pytest.approx(flat["area_um2"], rel=0.15)
    assert hier["critical_path_ns"] == pytest.approx(flat["critical_path_ns"], rel=0.3)
    # a second run takes every module from the cache, with the same result
    again = synthesize(cfg, out_dir=tmp_path / "again", clock_ns=10.0)
    assert again["modules"]["synthesized"] == 0
    assert again["area_um2"] == hier["area_um2"]
    assert again["critical_path_ns"] == hier["critical_path_ns"]


@pytest.mark.synth
def test_sram_macros_on_sky130(tmp_path):
    cfg = _tiny("memory=sram", "macros=sky130_sram")
    r = synthesize(cfg, out_dir=tmp_path, liberty=str(SKY130), clock_ns=10.0)
    lib = load_macro_library("sky130_sram")
    mem = r["memory"]
    assert mem["binding"] == "sram" and mem["macro_library"] == "sky130_sram"
    assert mem["macros"], mem
    for name, used in mem["macros"].items():
        assert used["area_um2"] == pytest.approx(used["count"] * lib.macro(name).area_um2)
    # the composed netlist holds each distinct module once: its macros count once per
    # instance of the module
    modules = split_modules(Path(r["netlist"]).read_text())
    times = instance_counts(modules, r["top"])
    instances = sum(len(re.findall(rf"^\s*{n}\s", m.text, re.M)) * times[name]
                    for name, m in modules.items() for n in mem["macros"])
    assert instances == sum(u["count"] for u in mem["macros"].values())
    assert mem["macro_area_um2"] == pytest.approx(sum(u["area_um2"] for u in mem["macros"]
                                                      .values()))
    assert mem["area_um2"] == pytest.approx(r["area_by_group"]["buffers"])
    assert 0 < mem["ff_area_um2"] < mem["area_um2"]
    assert r["area_um2"] == pytest.approx(r["logic_area_um2"] + mem["area_um2"])
    # OpenSTA reads the macros' liberties and times paths out of them
    tcl = Path(r["sta_log"]).with_name("sta.tcl").read_text()
    for name in mem["macros"]:
        assert str(lib.macro(name).liberty) in tcl
    assert r["macro_paths"]["from_macros"]["startpoint"].startswith(
        ("act_buf", "weight_buf", "col0/out_buf"))
    assert r["macro_paths"]["from_macros"]["arrival_ns"] > 0


@pytest.mark.synth
def test_flip_flop_fallback_on_osu018(tmp_path):
    cfg = _tiny("memory=sram")
    r = synthesize(cfg, out_dir=tmp_path, clock_ns=10.0)
    assert r["memory"]["note"] == ("memory=sram, but liberty 'osu018_stdcells' has no macro "
                                   "library: flip-flops")
    assert r["memory"]["macros"] == {} and r["memory"]["macro_area_um2"] == 0
    assert r["memory"]["ff_area_um2"] == pytest.approx(r["area_by_group"]["buffers"])


@pytest.mark.synth
def test_flip_flop_bit_area_of_the_macro_library(tmp_path):
    """The figure ``auto`` weighs macros against is that of a synthesized buffer."""
    lib = load_macro_library("sky130_sram")
    cons = asic.asic_constraints({"liberty": str(SKY130)})
    liberty, settings = asic._resolve_liberty(cons)
    cells = asic.library_cells(liberty, settings)
    text = verilog.convert(Buffer(16, 64, binding=MemoryBinding()), name="buf",
                           emit_src=False)
    total = asic._hier("buf", text, liberty, cons, cells,
                       "set_driving_cell sky130_fd_sc_hd__buf_1\nset_load 0.01\n", (), (),
                       tmp_path)[0]
    assert total / (16 * 64) == pytest.approx(lib.ff_bit_area_um2, rel=0.02)


@pytest.mark.synth
@pytest.mark.long
def test_block_ram_on_ecp5(tmp_path):
    """SRAM buffers are block RAM on an FPGA (placed and routed); flip-flop ones are left to
    Yosys (which puts these small ones in distributed RAM; synthesis alone)."""
    ff = fpga_resources(_tiny("memory=ff"), "ecp5", tmp_path / "ff")
    sram = synthesize(_tiny("memory=sram", "macros=sky130_sram"), "ecp5",
                      out_dir=tmp_path / "sram")
    assert sram["brams"] >= 3 and sram["brams"] > ff["brams"]
    assert sram["memory"]["note"] == "memory=sram on an FPGA: buffers in block RAM"
    assert ff["memory"]["note"] == ("memory=ff on an FPGA: buffers in block RAM, distributed "
                                    "RAM or flip-flops as Yosys infers")
    assert "sky130" not in Path(sram["synth_log"]).with_name("rcm_tile.v").read_text()


def _one_line_error(r, pattern):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"rcm-gen: error: {pattern}", lines[0]), r.stderr


def _bad_library(tmp_path: Path) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir()
    src = load_macro_library("sky130_sram").source.parent
    for f in src.iterdir():
        text = f.read_text()
        if f.name.startswith("sky130_sram_2kbyte") and f.suffix == ".lib":
            text = text.replace("area : 284538.474;", "")
        (folder / f.name).write_text(text)
    return folder / "library.toml"


_FF_CORNER = """library (sky130_fd_sc_hd__ff_100C_1v95) {
  nom_voltage : 1.95;
  nom_temperature : 100.0;
  cell (sky130_fd_sc_hd__buf_1) { area : 3.75; pin (A) { direction : input; }
    pin (X) { direction : output; function : "A"; } }
}
"""


def test_bad_memory_input_on_the_command_line(cli, tmp_path):
    out = tmp_path / "runs"
    ff_corner = tmp_path / "sky130_fd_sc_hd__ff_100C_1v95.lib"
    ff_corner.write_text(_FF_CORNER)
    bad = _bad_library(tmp_path)
    cases = [
        (["--set", "macros=sky130_sram", "--set", "memory=sram"],
         r"macro library 'sky130_sram' \(sky130, tt, 1.8 V, 25 C\) does not go with liberty "
         r"'osu018_stdcells', which is not a sky130 library \(sky130_fd_sc_\*\)"),
        (["--set", "macros=sky130_sram", "--set", "memory=auto", "--liberty", str(ff_corner)],
         r"macro library 'sky130_sram' \(sky130, tt, 1.8 V, 25 C\) does not go with liberty "
         r"'sky130_fd_sc_hd__ff_100C_1v95', which is at 1.95 V, 100 C"),
        (["--set", "macros=sky130_sram", "--set", "memory=sky130_sram_8kbyte"],
         r"--set memory=sky130_sram_8kbyte: Tile memory must be one of ff, latch, sram, auto or a "
         r"macro of sky130_sram \(.*\), not 'sky130_sram_8kbyte'"),
        (["--set", f"macros={bad}", "--set", "memory=sram", "--liberty", str(SKY130)],
         r"macro library 'sky130_sram', macro 'sky130_sram_2kbyte_1rw1r_32x512_8': cell "
         r"'sky130_sram_2kbyte_1rw1r_32x512_8' in liberty '[^']+' has no area"),
        (["--hierarchy", "deep"], r"--hierarchy must be one of hier, flat, not 'deep'"),
        (["--target", "ecp5", "--hierarchy", "flat"],
         r"--hierarchy applies to --target asic, not 'ecp5'"),
    ]
    for args, pattern in cases:
        _one_line_error(cli("synth", "rcm-small", *args, "--out", str(out)), pattern)
        assert not out.exists()


def test_config_shows_the_binding(cli):
    r = cli("config", "rcm-default", "--set", "memory=auto", "--liberty", str(SKY130))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["memory"] == "auto"
    binding, modes = r.stderr.split("\nMAC modes ")
    tile = preset("rcm-default")
    assert modes.endswith(f"(per MAC; the tile has {tile.macs} MACs: p={tile.p} x q={tile.q})\n")
    lines = binding.splitlines()
    assert lines[0] == ("memory: memory=auto, macro library sky130_sram (goes with liberty "
                        "'sky130_fd_sc_hd__tt_025C_1v80')")
    rows = {ln.split()[0]: ln for ln in lines[2:]}
    assert set(rows) == {"act_buf", "weight_buf", "param_buf", "outpar_buf", "col0.out_buf0",
                         "col0.out_buf1"}
    assert "latch" in rows["weight_buf"]  # smaller than macros by the estimates
    r = cli("config", "rcm-default", "--set", "memory=auto")
    assert r.stderr.splitlines()[0] == ("memory: memory=auto without a macro library (macros "
                                        "unset): flip-flops")


def _netlists(sinks: int) -> dict[str, str]:
    child = ("module M_child(a, y);\n  input [1:0] a;\n  wire [1:0] a;\n  output y;\n"
             "  wire y;\n  AND2X2 _0_ (.A(a[0]), .B(a[1]), .Y(y));\nendmodule\n")
    insts = "".join(f"  M_child c{i} (\n    .a({{ \\x$1[1] , d }}),\n    .y(y[{i}])\n  );\n"
                    for i in range(sinks))
    top = (f"module M_top(d, y);\n  input d;\n  wire d;\n  output [{sinks - 1}:0] y;\n"
           f"  wire [{sinks - 1}:0] y;\n  wire \\x$1[1] ;\n"
           f"  INVX1 _1_ (.A(d), .Y(\\x$1[1] ));\n{insts}endmodule\n")
    return {"M_child": child, "M_top": top}


def test_fanout_buffer_trees(tmp_path):
    """A net that drives more than eight submodule inputs drives them through buffers,
    at most eight each, in a tree; the netlist still links."""
    from rcm_gen.flows.hier import buffer_fanouts
    from rcm_gen.flows.yosys import run_yosys

    out, added = buffer_fanouts(_netlists(8), ("BUFX4", "A", "Y"))
    assert added == {"M_child": 0, "M_top": 0}
    out, added = buffer_fanouts(_netlists(100), ("BUFX4", "A", "Y"))
    # two nets of 100 sinks: 13 leaf buffers each, under 2 buffers each
    assert added == {"M_child": 0, "M_top": 2 * (13 + 2)}
    top = out["M_top"]
    leaves = re.findall(r"\.a\(\{ (\S+) , (\S+) \}\)", top)
    assert len(leaves) == 100
    for column in zip(*leaves, strict=True):
        counts = {n: column.count(n) for n in set(column)}
        assert len(counts) == 13 and max(counts.values()) <= 8
    drivers = re.findall(r"BUFX4 \S+ \(\.A\((\S+ ?)\), \.Y\((\S+)\)\);", top)
    assert sum(1 for src, _ in drivers if src.strip() in ("d", "\\x$1[1]")) == 4
    (tmp_path / "n.v").write_text(out["M_child"] + top)
    run_yosys([f"read_liberty -lib {OSU018}", f"read_verilog {tmp_path / 'n.v'}",
               "hierarchy -check -top M_top", "check -assert"], tmp_path / "n.log")


def test_fanout_buffer_trees_for_the_reset_not_the_clock():
    """The reset reaching every module is buffered like any data net (unbuffered, the
    input port drives every module's reset logic, with clock-gating enables many gates,
    and its transition alone took 18 ns on sky130's rcm-16x16); the clock is left to the
    clock tree."""
    from rcm_gen.flows.hier import buffer_fanouts

    child = ("module M_child(clk, rst, y);\n  input clk;\n  wire clk;\n  input rst;\n"
             "  wire rst;\n  output y;\n  wire y;\n  DFFPOSX1 _0_ (.CLK(clk), .D(rst), "
             ".Q(y));\nendmodule\n")
    insts = "".join(f"  M_child c{i} (\n    .clk(clk),\n    .rst(rst),\n    .y(y[{i}])\n"
                    "  );\n" for i in range(20))
    top = ("module M_top(clk, rst, y);\n  input clk;\n  wire clk;\n  input rst;\n"
           "  wire rst;\n  output [19:0] y;\n  wire [19:0] y;\n" + insts + "endmodule\n")
    out, added = buffer_fanouts({"M_child": child, "M_top": top}, ("BUFX4", "A", "Y"))
    assert added == {"M_child": 0, "M_top": 3}  # 20 sinks: 3 buffers of at most 8
    assert len(re.findall(r"\.clk\(clk\)", out["M_top"])) == 20
    assert not re.search(r"\.rst\(rst\)", out["M_top"].split("BUFX4")[-1])


def test_fanout_buffer_trees_of_vectors(tmp_path):
    """A whole vector or a part-select that reaches many submodule inputs is buffered bit
    by bit, its width kept (a bus must not become one net)."""
    from rcm_gen.flows.hier import buffer_fanouts
    from rcm_gen.flows.yosys import run_yosys

    child = ("module M_child(a, y);\n  input [3:0] a;\n  wire [3:0] a;\n  output y;\n"
             "  wire y;\n  wire n;\n  AND2X2 _0_ (.A(a[0]), .B(a[1]), .Y(n));\n"
             "  AOI21X1 _1_ (.A(a[2]), .B(a[3]), .C(n), .Y(y));\nendmodule\n")
    whole = "".join(f"  M_child w{i} (\n    .a(d),\n    .y(y[{i}])\n  );\n" for i in range(10))
    part = "".join(f"  M_child p{i} (\n    .a(\\q$1 [4:1]),\n    .y(y[{i + 10}])\n  );\n"
                   for i in range(10))
    top = ("module M_top(d, \\q$1 , y);\n  input [3:0] d;\n  wire [3:0] d;\n"
           "  input [4:0] \\q$1 ;\n  wire [4:0] \\q$1 ;\n  output [19:0] y;\n"
           f"  wire [19:0] y;\n{whole}{part}endmodule\n")
    out, added = buffer_fanouts({"M_child": child, "M_top": top}, ("BUFX4", "A", "Y"))
    # eight bits of ten sinks each: two buffers per bit
    assert added == {"M_child": 0, "M_top": 16}
    conns = re.findall(r"\.a\(\{ (.*?) \}\)", out["M_top"])
    assert len(conns) == 20 and all(len(c.split(" , ")) == 4 for c in conns)
    drivers = {y: a for a, y in re.findall(r"BUFX4 \S+ \(\.A\((.+?)\), \.Y\((\S+)\)\);",
                                           out["M_top"])}
    # the first instance's bits come, most significant first, from buffers of d[3]..d[0]
    assert [drivers[n] for n in conns[0].split(" , ")] == ["d[3]", "d[2]", "d[1]", "d[0]"]
    assert [drivers[n].strip() for n in conns[10].split(" , ")] == [
        "\\q$1 [4]", "\\q$1 [3]", "\\q$1 [2]", "\\q$1 [1]"]
    (tmp_path / "n.v").write_text(out["M_child"] + out["M_top"])
    log = run_yosys([f"read_liberty -lib {OSU018}", f"read_verilog {tmp_path / 'n.v'}",
                     "hierarchy -check -top M_top", "check -assert"], tmp_path / "n.log")
    assert "Resizing" not in log


def test_fanout_buffers_by_capacitance():
    """With the library's pin capacitances, a module input that drives many cells (an
    ungated memory's write enable reaching every flip-flop's enable) gets a buffer tree
    in that module, while nets its own cells drive (sized by its mapping) and clock pins
    do not; and a parent weighs a submodule input by the capacitance the child's netlist
    puts on it, so five heavily loaded inputs need buffers where five light ones do not."""
    from rcm_gen.flows.hier import CELL_LOADS_PER_INPUT, buffer_fanouts
    from rcm_gen.flows.liberty import load_liberty

    lib = load_liberty(str(OSU018))
    cells = {c.name: {p.name: (p.direction, p.capacitance) for p in c.pins.values()
                      if not p.clock} for c in lib.cells.values()}
    unit = cells["BUFX4"]["A"][1]
    mux_s = cells["MUX2X1"]["S"][1]

    def child(n: int) -> str:
        muxes = "".join(f"  MUX2X1 _m{i}_ (\n    .A(d[{i}]),\n    .B(q[{i}]),\n    .S(en),\n"
                        f"    .Y(n{i})\n  );\n  DFFPOSX1 _f{i}_ (\n    .CLK(clk),\n    .D(n{i}),\n"
                        f"    .Q(q[{i}])\n  );\n" for i in range(n))
        inner = "".join(f"  INVX1 _i{i}_ (\n    .A(x),\n    .Y(z{i})\n  );\n" for i in range(n))
        wires = "".join(f"  wire n{i};\n  wire z{i};\n" for i in range(n))
        return (f"module M_c{n}(clk, en, d, q);\n  input clk;\n  wire clk;\n  input en;\n"
                f"  wire en;\n  input [{n - 1}:0] d;\n  wire [{n - 1}:0] d;\n"
                f"  output [{n - 1}:0] q;\n  wire [{n - 1}:0] q;\n  wire x;\n{wires}"
                f"  INVX1 _x_ (\n    .A(en),\n    .Y(x)\n  );\n{muxes}{inner}endmodule\n")

    def top(n: int) -> str:
        insts = "".join(f"  M_c{n} c{i} (\n    .clk(clk),\n    .en(en),\n    .d(d),\n"
                        f"    .q(q{i})\n  );\n" for i in range(5))
        qs = "".join(f"  wire [{n - 1}:0] q{i};\n" for i in range(5))
        return (f"module M_t{n}(clk, en, d);\n  input clk;\n  wire clk;\n  input en;\n"
                f"  wire en;\n  input [{n - 1}:0] d;\n  wire [{n - 1}:0] d;\n{qs}{insts}"
                "endmodule\n")

    heavy = int(3 * CELL_LOADS_PER_INPUT * 8 * unit / mux_s)  # three leaves' load of S pins
    medium = int(6 * CELL_LOADS_PER_INPUT * unit / mux_s)  # six loads: no tree inside
    netlists = {f"M_{k}{n}": f(n) for n in (4, medium, heavy) for k, f in (("t", top),
                                                                           ("c", child))}
    out, added = buffer_fanouts(netlists, ("BUFX4", "A", "Y"), cells=cells)
    # the light child: nothing; its parent: five light inputs, nothing
    assert added["M_c4"] == 0 and added["M_t4"] == 0
    # the heavy child: its input en through a tree (three or four leaves), none for x, the
    # net its own inverter drives, none on the clock
    assert 3 <= added[f"M_c{heavy}"] <= 4
    text = out[f"M_c{heavy}"]
    assert not re.search(r"\.S\(en\)", text) and len(re.findall(r"\.A\(x\)", text)) == heavy
    assert len(re.findall(r"\.CLK\(clk\)", text)) == heavy
    # its parent: each child's en now loads it with a few buffer inputs, light
    assert added[f"M_t{heavy}"] == 0
    # the medium child keeps its en; its parent drives the five children's en, six loads
    # each, through a buffer each
    assert added[f"M_c{medium}"] == 0 and added[f"M_t{medium}"] == 5
    assert len(re.findall(r"\.en\(\{ rcm_fanout_\d \}\)", out[f"M_t{medium}"])) == 5
    # without capacitances, the pass counts submodule inputs only, as before
    assert buffer_fanouts(netlists, ("BUFX4", "A", "Y"))[1] == dict.fromkeys(netlists, 0)


def test_fanout_buffers_on_an_escaped_port(tmp_path):
    """A rewired connection to a port whose name is escaped (``\\wr_addr$1``) keeps the
    space that ends the name, so the netlist still parses."""
    from rcm_gen.flows.hier import buffer_fanouts
    from rcm_gen.flows.yosys import run_yosys

    child = ("module M_child(\\a$1 , y);\n  input [1:0] \\a$1 ;\n  wire [1:0] \\a$1 ;\n"
             "  output y;\n  wire y;\n  AND2X2 _0_ (.A(\\a$1 [0]), .B(\\a$1 [1]), .Y(y));\n"
             "endmodule\n")
    insts = "".join(f"  M_child c{i} (\n    .\\a$1 (d),\n    .y(y[{i}])\n  );\n"
                    for i in range(10))
    top = ("module M_top(d, y);\n  input [1:0] d;\n  wire [1:0] d;\n  output [9:0] y;\n"
           f"  wire [9:0] y;\n{insts}endmodule\n")
    out, added = buffer_fanouts({"M_child": child, "M_top": top}, ("BUFX4", "A", "Y"))
    assert added == {"M_child": 0, "M_top": 4}
    assert len(re.findall(r"^    \.\\a\$1 \(\{ rcm_fanout_\d+ , rcm_fanout_\d+ \}\),$",
                          out["M_top"], re.M)) == 10
    (tmp_path / "n.v").write_text(out["M_child"] + out["M_top"])
    run_yosys([f"read_liberty -lib {OSU018}", f"read_verilog {tmp_path / 'n.v'}",
               "hierarchy -check -top M_top", "check -assert"], tmp_path / "n.log")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _lef_area(cell: str) -> float:
    lef = OSU018.with_suffix(".lef").read_text()
    block = lef[lef.index(f"MACRO {cell}\n"):]
    w, h = re.search(r"SIZE\s+([0-9.]+)\s+BY\s+([0-9.]+)", block).groups()
    return float(w) * float(h)


@pytest.mark.synth
@pytest.mark.parametrize("liberty", [str(SKY130), "osu018"], ids=["sky130", "osu018"])
def test_bit_areas_of_flip_flop_and_latch_memories(tmp_path, liberty):
    """The per-bit figures ``auto`` chooses by are those of a synthesized 64 x 16 buffer;
    the latch memory's netlist holds the library's latches (and on sky130 its
    integrated clock-gating cell, one per word)."""
    from rcm_gen.flows.clockgate import gating_cell
    from rcm_gen.gateware.memory import MemoryPlatform, stdcell_bit_areas
    from rcm_gen.hierarchy import render

    cons = asic.asic_constraints({"liberty": liberty})
    lib, settings = asic._resolve_liberty(cons)
    cells = asic.library_cells(lib, settings)
    figures = stdcell_bit_areas(lib.name)
    g = gating_cell(lib, cells["dont_use"])
    gate = (g.cell, g.clock, g.enable, g.gated) if g.kind == "integrated" else None
    abc = f"set_driving_cell {cells['driving_cell']}\nset_load {cons['output_load']}\n"
    for kind in ("ff", "latch"):
        text = render(Buffer(16, 64), "buf", MemoryPlatform(MemoryBinding(kind, gate=gate)))
        total, _, _, by_type, netlist, *_ = asic._hier(
            "buf", text.text, lib, cons, cells, abc, (), (), _mkdir(tmp_path / kind),
            lib_cells=(gate[0],) if gate else ())
        latches = {t: n for t, n in by_type.items()
                   if any(q.kind == "latch" for q in lib.cells[t].sequential)}
        if kind == "ff":
            assert not latches
        else:
            assert sum(latches.values()) >= 16 * 64
            if gate:
                # a gate per word and the block's own gate in front of them
                assert by_type[gate[0]] == 64 + 1 and sum(latches.values()) == 16 * 64
            else:  # OSU's LATCH has no area in its liberty: counted at its LEF size
                assert lib.cells["LATCH"].area == 0
                total += latches["LATCH"] * _lef_area("LATCH")
        assert total / (16 * 64) == pytest.approx(figures[kind], rel=0.02), kind


def _without_latches(tmp_path: Path) -> Path:
    """OSU 0.18 um's liberty with its latch cell left out."""
    text = OSU018.read_text()
    start = text.index("cell (LATCH)")
    depth, i = 0, text.index("{", start)
    while True:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            break
    path = tmp_path / "nolatch.lib"
    path.write_text(text[:start] + text[i:])
    return path


def test_latch_memory_on_a_liberty_without_latches(cli, tmp_path):
    out = tmp_path / "runs"
    lib = _without_latches(tmp_path)
    _one_line_error(cli("synth", "rcm-small", "--set", "memory=latch", "--liberty", str(lib),
                        "--out", str(out)),
                    r"memory=latch needs latch cells and a clock gate, but liberty "
                    r"'osu018_stdcells' has no latch cells: use memory=ff")
    assert not out.exists()
    # auto on that liberty does not consider latches: it is not an error
    from rcm_gen.flows.asic import _resolve_liberty, asic_constraints, memory_platform

    liberty = _resolve_liberty(asic_constraints({"liberty": str(lib)}))[0]
    cfg = apply_overrides(preset("rcm-small"), ["memory=auto"])
    assert memory_platform(cfg, liberty).memory_binding.gate is None
