"""Checking generated Tcl (Vitis HLS, Vivado) with ``tclsh``, without the vendor tools.

Two passes in one ``tclsh`` run:

1. every command is complete (``info complete`` on the lines accumulated since the last
   complete command), so no brace, bracket or quote is left open;
2. the script is sourced in a child interpreter in which the Vitis HLS commands (and ``cd``,
   ``exit``) are stubs that record their arguments, so the script runs through and the calls it
   makes, in order, can be checked. Scripts that need the vendor tool's own commands to run
   (Vivado block designs) are checked with the first pass only (``run=False``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import GatemillError

# Commands of Vitis HLS used in run_hls.tcl (stubbed in the second pass)
VITIS_COMMANDS = (
    "open_project",
    "set_top",
    "add_files",
    "open_solution",
    "set_part",
    "create_clock",
    "csim_design",
    "csynth_design",
    "cosim_design",
    "export_design",
)

_CHECKER = r"""
set path [lindex $argv 0]
set f [open $path]
set text [read $f]
close $f
set cmd ""
set start 0
set lineno 0
foreach line [split $text "\n"] {
    incr lineno
    if {$cmd eq ""} { set start $lineno }
    append cmd $line "\n"
    if {[info complete $cmd]} {
        set cmd ""
    }
}
if {[string trim $cmd] ne ""} {
    puts "INCOMPLETE $start"
    exit 1
}
if {[lindex $argv 1] eq "-complete-only"} { puts OK; exit 0 }
set child [interp create]
foreach name [lrange $argv 1 end] {
    interp alias $child $name {} record $name
}
interp alias $child cd {} record cd
interp alias $child exit {} record exit
proc record {name args} {
    puts [list CALL $name {*}$args]
    return ""
}
if {[catch {$child eval [list source $path]} err]} {
    puts [list ERROR $err]
    exit 1
}
puts OK
"""


def tclsh() -> str | None:
    """The ``tclsh`` executable, if installed (Debian package ``tcl``)."""
    return shutil.which("tclsh")


def check_tcl(
    path: str | Path, stubs: tuple[str, ...] = VITIS_COMMANDS, run: bool = True
) -> list[list[str]]:
    """Check the Tcl script at *path*; returns the stubbed calls as ``[name, *args]``.

    With ``run=False`` only the first pass runs (every command complete) and nothing is
    returned.

    Raises
    ------
    GatemillError
        If ``tclsh`` is missing, a command is incomplete (the message gives its first line),
        or running the script with the stubs fails.
    """
    exe = tclsh()
    if exe is None:
        raise GatemillError("checking Tcl needs tclsh (Debian: apt-get install tcl).")
    with tempfile.TemporaryDirectory() as tmp:
        checker = Path(tmp) / "check.tcl"
        checker.write_text(_CHECKER)
        r = subprocess.run(
            [
                exe,
                str(checker),
                str(Path(path).resolve()),
                *(stubs if run else ("-complete-only",)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    lines = r.stdout.splitlines()
    if r.returncode or not lines or lines[-1] != "OK":
        last = lines[-1] if lines else r.stderr.strip()
        if last.startswith("INCOMPLETE"):
            raise GatemillError(
                f"{path}: the Tcl command from line {last.split()[1]} is incomplete."
            )
        raise GatemillError(f"{path}: the Tcl script does not run: {last}")
    calls = []
    for line in lines[:-1]:
        if line.startswith("CALL "):
            # the line is a Tcl list; the recorded words are plain (no braces inside)
            calls.append(_split_tcl_list(line)[1:])
    return calls


def _split_tcl_list(text: str) -> list[str]:
    """Split a Tcl list of simple words and brace-quoted words."""
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text[i] == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            words.append(text[i + 1 : j - 1])
            i = j
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words
