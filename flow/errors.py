"""User-facing errors.

Every problem the user can fix (a bad model, a missing file, a wrong option) is raised as a
:class:`GatemillError`; the CLI prints its message as one paragraph and exits with code 2,
without a traceback. Anything else escaping the CLI is a bug in gatemill.
"""


class GatemillError(Exception):
    """A problem with the user's input that the user can fix.

    Parameters
    ----------
    message : str
        One paragraph: what is wrong (naming the node, file or option) and what to do.
    """

    exit_code = 2


class ToolError(GatemillError):
    """An external tool (simulator, synthesizer) failed.

    Parameters
    ----------
    tool : str
        The tool's name, e.g. ``"yosys"``.
    command : list of str
        The command that was run.
    log : str or path-like, optional
        Where the tool's output was saved.
    """

    def __init__(self, tool, command, log=None, detail=""):
        self.tool, self.command, self.log = tool, list(command), log
        where = f" Its output is in {log}." if log else ""
        super().__init__(f"{tool} failed: `{' '.join(map(str, command))}`.{where} {detail}".strip())


class VerificationError(GatemillError):
    """The generated hardware disagrees with the golden model: a gatemill bug, not bad input
    (exit code 1)."""

    exit_code = 1
