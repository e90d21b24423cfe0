// `a` reaches an XOR directly and through a chain of buffers: the XOR of a signal with its
// own delayed copy is 0 when settled and pulses at every change of `a` when the chain is
// slower than the XOR (y6, six buffers); y1 sees one buffer, and whether its pulse gets
// through depends on the buffer's delay against the XOR's (inertial delays). Registers
// sample the XORs and `a`. OSU 0.18 um cells (tests/test_timed.py, tests/test_sdf.py).
module xchain(clk, a, q6, q1, qa);
  input clk, a;
  output q6, q1, qa;
  wire b1, b2, b3, b4, b5, b6, y6, y1;
  BUFX2 c1 (.A(a), .Y(b1));
  BUFX2 c2 (.A(b1), .Y(b2));
  BUFX2 c3 (.A(b2), .Y(b3));
  BUFX2 c4 (.A(b3), .Y(b4));
  BUFX2 c5 (.A(b4), .Y(b5));
  BUFX2 c6 (.A(b5), .Y(b6));
  XOR2X1 x6 (.A(a), .B(b6), .Y(y6));
  XOR2X1 x1 (.A(a), .B(b1), .Y(y1));
  DFFPOSX1 r6 (.CLK(clk), .D(y6), .Q(q6));
  DFFPOSX1 r1 (.CLK(clk), .D(y1), .Q(q1));
  DFFPOSX1 ra (.CLK(clk), .D(a), .Q(qa));
endmodule
