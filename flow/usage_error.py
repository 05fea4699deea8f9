"""How ``gatemill`` reports a command line it cannot parse.

Typer 0.29 vendors click as ``typer._click`` and exports only ``BadParameter`` of its errors; the
classes below are the ones its parser raises (``import click`` would give another, unrelated copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, NoSuchOption, UsageError
from typer.core import TyperGroup

__all__ = ["ClickException", "NoArgsIsHelpError", "UsageError", "error_message", "usage_text"]


def usage_text(error: UsageError, root: typer.Context, argv: Sequence[str]) -> str:
    """The usage line of the command that refused the command line, and the hint to ``--help``.

    Parameters
    ----------
    error : UsageError
        What click raised: an unknown option or command, a missing argument or option, a bad value.
    root : typer.Context
        A context of the top-level command, used when click raised the error without one (an
        option given without its value).
    argv : sequence of str
        The command line without the program name; it locates the subcommand in that case.

    Returns
    -------
    str
        ``Usage: gatemill build [OPTIONS] ...``, ``Try 'gatemill build --help' for help.`` and an
        empty line, click's own lines (:func:`error_message` follows them).
    """
    ctx = error.ctx if error.ctx is not None else command_context(root, argv)
    lines = [ctx.get_usage()]
    if ctx.command.get_help_option(ctx) is not None:
        lines.append(f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.")
    return "\n".join([*lines, ""])


def error_message(error: UsageError) -> str:
    """Click's message, with the options it found close to an unknown one as a question.

    Unknown commands need nothing more: Typer already appends "Did you mean 'synth'?".

    Parameters
    ----------
    error : UsageError
        What click raised.

    Returns
    -------
    str
        One line, e.g. ``No such option: --bord. Did you mean --board?``.
    """
    if isinstance(error, NoSuchOption) and error.possibilities:
        return f"{error.message}. Did you mean {', '.join(sorted(error.possibilities))}?"
    return error.format_message()


def command_context(root: typer.Context, argv: Sequence[str]) -> typer.Context:
    """The context of the deepest subcommand that ``argv`` names, for its usage line.

    Parameters
    ----------
    root : typer.Context
        A context of the top-level command.
    argv : sequence of str
        The command line without the program name.

    Returns
    -------
    typer.Context
        ``root`` itself when ``argv`` names no subcommand.
    """
    ctx = root
    for token in argv:
        if not isinstance(ctx.command, TyperGroup):
            break
        if token.startswith("-"):
            continue
        sub = ctx.command.get_command(ctx, token)
        if sub is None:
            break
        ctx = typer.Context(sub, info_name=token, parent=ctx)
    return ctx
