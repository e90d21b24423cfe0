"""The Verilog hierarchy: each distinct module once, named for what it is, shareable
components elaborated once, the same text with and without the forked conversion, and
lint-clean."""

import re
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.hdl._ir import DriverConflict
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rcm_gen.flows.hier import cached_shared_verilog, dedupe, split_modules
from rcm_gen.flows.lint import lint_verilator, lint_yosys
from rcm_gen.generate import build_component, platform_for, render_design, to_verilog
from rcm_gen.hierarchy import render
from rcm_gen.presets import apply_overrides, preset

# a 2 x 4 MAC array, small enough to generate in a second or two
ARRAY = ["p=2", "tm=2", "tn=1", "tr=2", "tc=2", "k_max=3", "s_max=1", "mac.width=8",
         "qr=2", "qc=2", "act_beat=2"]


class Leaf(wiring.Component):
    """A shareable leaf: ``y`` is ``a + 1`` (or ``~a``), registered or not."""

    share_name = "leaf"

    def __init__(self, width: int, registered: bool = True, invert: bool = False) -> None:
        self.width, self.registered, self.invert = width, registered, invert
        super().__init__({"a": In(width), "y": Out(width)})

    def share_key(self):
        return type(self), self.width, self.registered, self.invert

    def share_variant(self):
        return f"w{self.width}"

    def elaborate(self, platform):
        m = Module()
        value = ~self.a if self.invert else self.a + 1
        domain = m.d.sync if self.registered else m.d.comb
        domain += self.y.eq(value)
        return m


class Plain(wiring.Component):
    """Not shareable: a submodule of its own wherever it is used."""

    a: In(4)
    y: Out(4)

    def __init__(self, mask: int = 5) -> None:
        self.mask = mask
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a ^ self.mask)
        return m


class Toy(wiring.Component):
    a: In(4)
    y: Out(4)

    def elaborate(self, platform):
        m = Module()
        parts = [Leaf(4), Leaf(4), Leaf(4), Leaf(4, registered=False),
                 Leaf(4, registered=False), Leaf(4, invert=True), Plain(), Plain()]
        names = ["r0", "r1", "r2", "c0", "c1", "inv", "p0", "p1"]
        acc = self.a
        for name, part in zip(names, parts, strict=True):
            m.submodules[name] = part
            m.d.comb += part.a.eq(acc)
            acc = part.y
        m.submodules.single = single = Plain(mask=6)
        m.d.comb += [single.a.eq(acc), self.y.eq(single.y)]
        return m


def test_toy_modules_once_named_and_lint_clean(tmp_path):
    h = render(Toy(), "toy")
    names = [m.name for m in h.modules]
    assert names[0] == "toy" and len(set(names)) == len(names)
    counts = {m.name: m.instances for m in h.modules}
    # three variants of the leaf, one name each, given in the order Yosys lists the
    # instances (c0, c1, inv, ..., r0): combinational (2 instances, it keeps the name),
    # registered inverting (1; told apart by the clock and reset it has) and registered
    # (3; numbered); two equal plain submodules under two instance names (named for
    # their kind), and another used once (named for its place)
    assert counts == {"toy": 1, "toy__leaf_w4": 2, "toy__leaf_w4_clk_rst": 1,
                      "toy__leaf_w4_clk_rst_2": 3, "toy__plain": 2, "toy__single": 1}
    assert len(re.findall(r"^module ", h.text, re.M)) == len(names)
    # the combinational leaf has no clock: its instances do not connect one
    comb = re.search(r"^module toy__leaf_w4\((.*?)\);", h.text, re.M | re.S).group(1)
    assert "clk" not in comb
    for inst in ("c0", "c1"):
        block = re.search(rf"^  toy__leaf_w4 {inst} \((.*?)\n  \);", h.text,
                          re.M | re.S).group(1)
        assert ".clk(" not in block and ".rst(" not in block and not block.endswith(",")
    assert re.search(r"^  toy__leaf_w4_clk_rst_2 r0 \(\n(.*\n)*?    \.clk\(clk\)", h.text,
                     re.M)
    v = tmp_path / "toy.v"
    v.write_text(h.text)
    for lint in (lint_yosys, lint_verilator):
        r = lint(v, "toy", tmp_path / f"{lint.__name__}.log")
        assert r.clean, r.messages


def test_forked_and_in_process_conversion_write_the_same_text():
    cfg = apply_overrides(preset("rcm-small"), ARRAY)
    a = render(build_component(cfg), "rcm_tile", platform_for(cfg))
    b = render(build_component(cfg), "rcm_tile", platform_for(cfg), parallel=False)
    assert a.text == b.text and a.modules == b.modules


def test_array_hierarchy(monkeypatch):
    """Every MAC, column, pixel unit, post-processing unit and buffer shape elaborated
    once; each module written once, none equal to another; instance counts from the
    configuration."""
    from rcm_gen.gateware import column, controller, mac

    calls: dict[str, int] = {}
    for cls in (mac.MAC, column.Column, controller.Pixel):
        original = cls.elaborate

        def counted(self, platform, original=original, name=cls.__name__):
            calls[name] = calls.get(name, 0) + 1
            return original(self, platform)

        monkeypatch.setattr(cls, "elaborate", counted)
    cfg = apply_overrides(preset("rcm-small"), ARRAY)
    h = render_design(cfg)
    assert cfg.macs == 8 and cfg.q == 4
    assert calls == {"MAC": 1, "Column": 1, "Pixel": 1}
    counts = {m.name: m.instances for m in h.modules}
    assert counts["rcm_tile"] == 1
    assert counts["rcm_tile__mac"] == counts["rcm_tile__mac__multiplier"] == cfg.macs
    assert counts["rcm_tile__mac_column"] == counts["rcm_tile__pixel_unit"] == cfg.q
    assert counts["rcm_tile__loader"] == counts["rcm_tile__controller"] == 1
    # names say what a module is: no instance numbers, no hashes
    for name in counts:
        assert re.fullmatch(r"rcm_tile(__[a-z][a-z0-9_]*)*", name), name
        assert not re.search(r"[0-9a-f]{8}", name), name
    assert any(n.startswith("rcm_tile__buffer_") for n in counts)
    assert any(n.startswith("rcm_tile__ff_block_") for n in counts)
    # no two modules are equal up to their names
    key_of, _ = dedupe(split_modules(h.text))
    assert len(set(key_of.values())) == len(h.modules) == len(key_of)
    # each module's children, as the text instantiates them
    for m in h.modules:
        body = re.search(rf"^module {m.name}\(.*?^endmodule$", h.text, re.M | re.S).group(0)
        for child, k in m.children:
            assert len(re.findall(rf"^  {child} \S+ \($", body, re.M)) == k


def test_conversion_errors_reach_the_caller():
    """An error found while converting the top (here a signal driven from two modules)
    is raised as itself, from the forked process too."""

    class Clash(wiring.Component):
        y: Out(1)

        def elaborate(self, platform):
            m = Module()
            shared = Signal()
            sub = Module()
            sub.d.comb += shared.eq(1)
            m.submodules.sub = sub
            m.d.comb += [shared.eq(0), self.y.eq(shared)]
            return m

    for parallel in (True, False):
        with pytest.raises(DriverConflict):
            render(Clash(), "clash", parallel=parallel)


@pytest.mark.parametrize("name", ["2top", "rcm.tile", "", None])
def test_top_name_must_be_plain(name):
    toy = Toy()
    toy._MustUse__silence = True  # refused before it is elaborated
    with pytest.raises(ValueError, match=rf"^Top module name must be a plain Verilog "
                                         rf"identifier, not {re.escape(repr(name))}$"):
        render(toy, name)


def test_manifest_lists_the_modules(tmp_path):
    from rcm_gen.generate import write_design

    cfg = preset("mac16")
    manifest = write_design(cfg, tmp_path / "out")
    assert manifest["modules"] == [{"name": "rcm_mac", "instances": 1},
                                   {"name": "rcm_mac__multiplier", "instances": 1}]
    text = Path(tmp_path / "out" / "rcm_mac.v").read_text()
    assert re.findall(r"^module (\w+)\(", text, re.M) == ["rcm_mac", "rcm_mac__multiplier"]
    # what the simulators and the synthesis flows read is the same text
    assert to_verilog(cfg) == text
    assert cached_shared_verilog(cfg, "rcm_mac", platform_for(cfg), tmp_path / "c") == text
    assert cached_shared_verilog(cfg, "rcm_mac", platform_for(cfg), tmp_path / "c") == text
