"""Command lines gatemill cannot parse: the usage line, the error, exit code 2, no traceback.

The commands come from walking the click tree of the Typer app, so a command added later is
covered without editing this file. Nothing here runs a command: every command line lacks a
required parameter or fails to parse.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from gatemill.flow.cli import app, main


def walk(command, path):
    """Yield ``(path, command)`` for ``command`` and every subcommand below it."""
    yield path, command
    if isinstance(command, TyperGroup):
        ctx = typer.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), (*path, name))


COMMANDS = list(walk(typer.main.get_command(app), ("gatemill",)))
GROUPS = [(path, c) for path, c in COMMANDS if isinstance(c, TyperGroup)]
LEAVES = [(path, c) for path, c in COMMANDS if not isinstance(c, TyperGroup)]


def name(path):
    return " ".join(path)


def options(command):
    return [p for p in command.params if p.param_type_name == "option"]


def long_name(option):
    return next(o for o in option.opts if o.startswith("--"))


def takes_value(option):
    return not option.is_flag


def is_number(param):
    return param.type_descriptor.annotation in (int, float)


def is_choice(param):
    return bool(param.type_descriptor.is_choice)


def dummy(param):
    """A value click accepts for ``param`` (nothing runs: another parameter is missing)."""
    if is_choice(param):
        return str(param.type_descriptor.choices[0])
    return "1" if is_number(param) else "x"


def run(argv, capsys):
    code = main(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err, out.out + out.err
    return code, out.out, out.err


def assert_usage_error(argv, capsys, path, *needles):
    """Exit 2, nothing on stdout, the usage line of ``path`` and every needle on stderr."""
    code, out, err = run(argv, capsys)
    assert code == 2, err
    assert out == "", out
    assert err.startswith(f"Usage: {name(path)} "), err
    assert f"Try '{name(path)} --help' for help." in err, err
    error = err.rstrip().splitlines()[-1]
    assert error.startswith("error: "), err
    for needle in needles:
        assert needle in error, err
    return error


def missing_cases():
    """Each required parameter of each command, with the other required ones given."""
    for path, command in LEAVES:
        required = [p for p in command.params if p.required]
        for i, missing in enumerate(required):
            argv = list(path[1:])
            for p in required[:i] if missing.param_type_name == "argument" else required:
                if p is missing:
                    continue
                if p.param_type_name == "argument":
                    argv.append(dummy(p))
                else:
                    argv += [long_name(p), dummy(p)]
            yield pytest.param(path, argv, missing, id=f"{name(path)} {missing.name}")


def bad_value_cases():
    for path, command in LEAVES:
        for option in options(command):
            if takes_value(option) and (is_number(option) or is_choice(option)):
                yield pytest.param(path, option, id=f"{name(path)} {long_name(option)}")


def value_option_cases():
    for path, command in LEAVES:
        valued = [o for o in options(command) if takes_value(o)]
        if valued:
            yield pytest.param(path, valued[0], id=f"{name(path)} {long_name(valued[0])}")


def test_the_tree_has_every_command():
    """The walk finds the commands flow/cli.py registers (guards the walk itself)."""
    names = {path[-1] for path, _ in LEAVES}
    assert {"train", "hls", "boards", "synth", "bitstream", "explore", "doctor"} <= names
    assert {"import", "build", "demo"} <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[name(p) for p, _ in COMMANDS])
def test_unknown_option(path, command, capsys):
    argv = [*path[1:], "--no-such-option"]
    error = assert_usage_error(argv, capsys, path, "No such option: --no-such-option")
    assert "Did you mean" not in error


@pytest.mark.parametrize("path, command", COMMANDS, ids=[name(p) for p, _ in COMMANDS])
def test_mistyped_option_names_the_close_match(path, command, capsys):
    opts = [long_name(o) for o in options(command)] or ["--help"]
    wanted = max(opts, key=len)
    typo = wanted + wanted[-1]  # --board -> --boardd
    error = assert_usage_error([*path[1:], typo], capsys, path, f"No such option: {typo}")
    assert "Did you mean" in error and wanted in error.split("Did you mean", 1)[1], error


@pytest.mark.parametrize("path, argv, missing", list(missing_cases()))
def test_missing_required_parameter(path, argv, missing, capsys):
    if missing.param_type_name == "argument":
        hint = missing.metavar or missing.name
        assert_usage_error(argv, capsys, path, f"Missing argument '{hint}'.")
    else:
        assert_usage_error(argv, capsys, path, f"Missing option '{long_name(missing)}'")


@pytest.mark.parametrize("path, option", list(bad_value_cases()))
def test_bad_value(path, option, capsys):
    opt = long_name(option)
    assert_usage_error([*path[1:], opt, "abc"], capsys, path, f"Invalid value for '{opt}'")


@pytest.mark.parametrize("path, option", list(value_option_cases()))
def test_option_without_its_value(path, option, capsys):
    """Click raises this one without a context: the usage line is found from the command line."""
    opt = long_name(option)
    assert_usage_error([*path[1:], opt], capsys, path, f"Option '{opt}' requires an argument.")


@pytest.mark.parametrize("path, group", GROUPS, ids=[name(p) for p, _ in GROUPS])
def test_unknown_command(path, group, capsys):
    error = assert_usage_error([*path[1:], "tapeout"], capsys, path, "No such command 'tapeout'.")
    assert "Did you mean" not in error


def close_command_cases():
    for path, group in GROUPS:
        ctx = typer.Context(group, info_name=path[-1])
        for sub in group.list_commands(ctx):
            yield pytest.param(path, sub, id=f"{name(path)} {sub}")


@pytest.mark.parametrize("path, sub", list(close_command_cases()))
def test_mistyped_command_names_the_close_match(path, sub, capsys):
    typo = sub + sub[-1]  # synth -> synthh
    assert_usage_error(
        [*path[1:], typo], capsys, path, f"No such command '{typo}'.", f"Did you mean '{sub}'"
    )


def test_unknown_subcommand_of_a_group(monkeypatch, capsys):
    """A command group (``gatemill probe ...``) reports its own usage line and subcommands."""
    probe = typer.Typer()

    @probe.command()
    def first(count: int = 1) -> None:  # pragma: no cover - never runs
        raise AssertionError

    @probe.command()
    def second() -> None:  # pragma: no cover - never runs
        raise AssertionError

    monkeypatch.setattr(app, "registered_groups", list(app.registered_groups))
    app.add_typer(probe, name="probe")
    group = ("gatemill", "probe")
    assert_usage_error(["probe", "third"], capsys, group, "No such command 'third'.")
    assert_usage_error(["probe", "firts"], capsys, group, "Did you mean 'first'")
    cmd = ("gatemill", "probe", "first")
    assert_usage_error(["probe", "first", "--cont"], capsys, cmd, "Did you mean --count?")
    assert_usage_error(["probe", "first", "--count"], capsys, cmd, "requires an argument")
    assert_usage_error(["probe", "first", "--count", "abc"], capsys, cmd, "for '--count'")


def test_no_arguments_and_help_exit_0(capsys):
    assert main([]) == 0
    assert "Usage: gatemill" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "Usage: gatemill" in capsys.readouterr().out


@pytest.mark.parametrize("path, command", LEAVES, ids=[name(p) for p, _ in LEAVES])
def test_help_of_every_command(path, command, capsys):
    code, out, _ = run([*path[1:], "--help"], capsys)
    assert code == 0
    assert f"Usage: {name(path)}" in out


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["build", "m.onnx", "--out", "y", "--bord", "x"], ["Did you mean --board"]),
        (["tapeout"], ["No such command 'tapeout'."]),
        (["synht"], ["Did you mean 'synth'?"]),
        (["build", "m.onnx", "--out"], ["Usage: gatemill build", "requires an argument"]),
    ],
    ids=["option", "command", "close-command", "no-context"],
)
def test_the_installed_command_prints_no_traceback(argv, needles):
    gatemill = Path(sys.executable).with_name("gatemill")
    done = subprocess.run([gatemill, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.stderr.startswith("Usage: gatemill"), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr
