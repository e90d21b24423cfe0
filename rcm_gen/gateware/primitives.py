"""FPGA primitives the gateware instantiates, and rcm_gen's behavioural models of them
for simulation and lint.

The ``dsp`` and ``fixed`` architectures with ``dsp_block`` ``ecp5`` write each of their
multipliers as an ECP5 ``MULT18X18D`` (:func:`ecp5_mult`), so that the MAC's pipeline
registers are the DSP block's own.  Synthesis for ECP5 takes the instance as the
primitive; the simulators take :data:`MULT18X18D_MODEL`, a model of the subset
instantiated here written from the ECP5 sysDSP usage guide (Lattice FPGA-TN-02205): any
other parameter value stops the simulation with a message rather than simulate a mode
the model does not describe.
"""

from __future__ import annotations

import re

from amaranth.hdl import C, ClockSignal, Instance, ResetSignal, Signal, Value, signed

from ..config import ECP5_MULT_BITS
from .arith import sign_extend


def ecp5_mult(a: Value, b: Value, *, input_regs: bool, output_reg: bool,
              output_reset: Value | None = None) -> tuple[Instance, Signal]:
    """An ECP5 ``MULT18X18D`` multiplying the signed a and b (two's complement values of
    at most 18 bits, sign-extended to them), with its input registers (``input_regs``)
    and its output register (``output_reg``) on the ``sync`` clock, and its 36-bit
    product.  The domain's reset clears the registers (synchronously), the output
    register ``output_reset`` instead when given (the domain's reset or'ed in by the
    caller)."""
    assert len(a) <= ECP5_MULT_BITS and len(b) <= ECP5_MULT_BITS
    bits = 2 * ECP5_MULT_BITS
    a18, b18 = sign_extend(a, ECP5_MULT_BITS), sign_extend(b, ECP5_MULT_BITS)
    product = Signal(signed(bits), name="p36")
    clear = ResetSignal() if output_reset is None else output_reset
    reg = {True: "CLK0", False: "NONE"}
    params = {
        "p_REG_INPUTA_CLK": reg[input_regs], "p_REG_INPUTA_CE": "CE0",
        "p_REG_INPUTA_RST": "RST0",
        "p_REG_INPUTB_CLK": reg[input_regs], "p_REG_INPUTB_CE": "CE0",
        "p_REG_INPUTB_RST": "RST0",
        "p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE",
        "p_REG_OUTPUT_CLK": reg[output_reg], "p_REG_OUTPUT_CE": "CE0",
        "p_REG_OUTPUT_RST": "RST1",
        "p_GSR": "DISABLED", "p_MULT_BYPASS": "DISABLED", "p_RESETMODE": "SYNC",
    }
    zero, one = C(0, 1), C(1, 1)
    ports = {
        **{f"i_A{i}": a18[i] for i in range(ECP5_MULT_BITS)},
        **{f"i_B{i}": b18[i] for i in range(ECP5_MULT_BITS)},
        **{f"i_C{i}": zero for i in range(ECP5_MULT_BITS)},
        "i_SIGNEDA": one, "i_SIGNEDB": one, "i_SOURCEA": zero, "i_SOURCEB": zero,
        "i_CLK0": ClockSignal(), "i_CLK1": zero, "i_CLK2": zero, "i_CLK3": zero,
        "i_CE0": one, "i_CE1": one, "i_CE2": one, "i_CE3": one,
        "i_RST0": ResetSignal(), "i_RST1": clear, "i_RST2": zero, "i_RST3": zero,
        **{f"o_P{i}": product[i] for i in range(bits)},
    }
    return Instance("MULT18X18D", **params, **ports), product


def _mult18x18d_model() -> str:
    bits = ECP5_MULT_BITS
    a = [f"A{i}" for i in range(bits)]
    b = [f"B{i}" for i in range(bits)]
    c = [f"C{i}" for i in range(bits)]
    p = [f"P{i}" for i in range(2 * bits)]
    ctrl = ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB",
            *(f"{s}{i}" for s in ("CLK", "CE", "RST") for i in range(4))]
    ins = [*a, *b, *c, *ctrl]

    def cat(names: list[str]) -> str:
        return "{" + ", ".join(reversed(names)) + "}"

    checks = "\n".join(
        f'    if ({name} != "NONE" && {name} != "CLK0") bad = 1;'
        for name in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"))
    return f"""\
// rcm_gen's behavioural model of the ECP5 sysDSP MULT18X18D, for simulation.  It models
// the subset rcm_gen instantiates: A and B signed or not (SIGNEDA, SIGNEDB), the A and B
// input registers and the output register each either off (NONE) or on CLK0 with clock
// enable CE0 and synchronous reset RST0 or RST1 (RESETMODE SYNC; a reset wins over the
// enable); no pipeline register, no C input, no shift or cascade ports.  Any other
// parameter value stops the simulation.
`default_nettype none
/* verilator lint_off UNUSEDPARAM */
module MULT18X18D #(
  parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTA_CE = "CE0",
  parameter REG_INPUTA_RST = "RST0",
  parameter REG_INPUTB_CLK = "NONE", parameter REG_INPUTB_CE = "CE0",
  parameter REG_INPUTB_RST = "RST0",
  parameter REG_INPUTC_CLK = "NONE", parameter REG_PIPELINE_CLK = "NONE",
  parameter REG_OUTPUT_CLK = "NONE", parameter REG_OUTPUT_CE = "CE0",
  parameter REG_OUTPUT_RST = "RST0",
  parameter GSR = "ENABLED", parameter MULT_BYPASS = "DISABLED",
  parameter RESETMODE = "SYNC"
) (
  input wire {", ".join(ins)},
  output wire {", ".join(p)}
);
  /* verilator lint_on UNUSEDPARAM */
  /* verilator lint_off UNUSEDSIGNAL */
  wire [17:0] c = {cat(c)};
  wire [3:0] ce = {{CE3, CE2, CE1, CE0}};
  wire [3:0] clk_unused = {{CLK3, CLK2, CLK1, SOURCEA}};
  wire source_b_unused = SOURCEB;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [17:0] a = {cat(a)};
  wire [17:0] b = {cat(b)};
  wire rst_a = REG_INPUTA_RST == "RST1" ? RST1 : RST0;
  wire rst_b = REG_INPUTB_RST == "RST1" ? RST1 : RST0;
  wire rst_p = REG_OUTPUT_RST == "RST1" ? RST1 : RST0;
  reg [17:0] a_r = 18'd0, b_r = 18'd0;
  reg sa_r = 1'b0, sb_r = 1'b0;
  reg [35:0] p_r = 36'd0;
  wire [17:0] a_in = REG_INPUTA_CLK == "CLK0" ? a_r : a;
  wire [17:0] b_in = REG_INPUTB_CLK == "CLK0" ? b_r : b;
  wire sa = REG_INPUTA_CLK == "CLK0" ? sa_r : SIGNEDA;
  wire sb = REG_INPUTB_CLK == "CLK0" ? sb_r : SIGNEDB;
  wire signed [18:0] a_x = {{sa & a_in[17], a_in}};
  wire signed [18:0] b_x = {{sb & b_in[17], b_in}};
  wire signed [37:0] product = a_x * b_x;
  always @(posedge CLK0) begin
    if (rst_a) begin a_r <= 18'd0; sa_r <= 1'b0; end
    else if (CE0) begin a_r <= a; sa_r <= SIGNEDA; end
    if (rst_b) begin b_r <= 18'd0; sb_r <= 1'b0; end
    else if (CE0) begin b_r <= b; sb_r <= SIGNEDB; end
    if (rst_p) p_r <= 36'd0;
    else if (CE0) p_r <= product[35:0];
  end
  assign {cat(p)} = REG_OUTPUT_CLK == "CLK0" ? p_r : product[35:0];
`ifndef SYNTHESIS
  reg bad;
  initial begin
    bad = 0;
{checks}
    if (REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_OUTPUT_CE != "CE0") bad = 1;
    if (REG_INPUTA_RST != "RST0" && REG_INPUTA_RST != "RST1") bad = 1;
    if (REG_INPUTB_RST != "RST0" && REG_INPUTB_RST != "RST1") bad = 1;
    if (REG_OUTPUT_RST != "RST0" && REG_OUTPUT_RST != "RST1") bad = 1;
    if (REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE") bad = 1;
    if (MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC") bad = 1;
    if (bad) begin
      $display("MULT18X18D %m: parameters outside the modelled subset");
      $finish;
    end
  end
`endif
endmodule
`default_nettype wire
"""


#: rcm_gen's behavioural model of ``MULT18X18D`` (see the module's doc).
MULT18X18D_MODEL = _mult18x18d_model()

#: Primitive name -> its behavioural model.
MODELS = {"MULT18X18D": MULT18X18D_MODEL}


def instantiated_primitives(verilog: str) -> list[str]:
    """The primitives of :data:`MODELS` that ``verilog`` instantiates."""
    return [name for name in MODELS if re.search(rf"^\s*{name}\s", verilog, re.M)]
