"""Generated text (Tcl, shell, C++ ...) from the Jinja2 templates in ``templates/``.

Model-derived names are sanitized identifiers before they get here; anything else that lands
in Tcl (paths, board strings) goes through the ``tcl`` filter, which quotes a value so Tcl
reads it back as exactly one literal word.
"""

from __future__ import annotations

import jinja2

_TCL_SPECIAL = set('\\"$[]{};')


def tcl_quote(value) -> str:
    """*value* as one double-quoted Tcl word with no substitution inside.

    >>> tcl_quote('a "b" [exec rm] $x')
    '"a \\\\"b\\\\" \\\\[exec rm\\\\] \\\\$x"'
    """
    out = []
    for ch in str(value):
        if ch in _TCL_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def sh_quote(value) -> str:
    """*value* as one single-quoted POSIX shell word."""
    return "'" + str(value).replace("'", "'\"'\"'") + "'"


def identifier(value) -> str:
    """*value* unchanged if it is a plain identifier; raises otherwise (a template bug)."""
    s = str(value)
    if not (s.isidentifier() and s.isascii()):
        raise ValueError(f"not a sanitized identifier: {s!r}")
    return s


def environment() -> jinja2.Environment:
    """The Jinja2 environment of gatemill's templates (strict: undefined names are errors)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gatemill.templates", "."),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(tcl=tcl_quote, sh=sh_quote, ident=identifier)
    return env


def render(template: str, **context) -> str:
    """Render ``templates/<template>`` with *context*."""
    return environment().get_template(template).render(**context)
