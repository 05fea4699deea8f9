"""gatemill compiler: zoo, frontend, IR, golden model, folding, steps, CLI.

The Python API (:mod:`gatemill.flow.api`) is available here too, loaded on first use
(``from gatemill.flow import import_model``), so importing a submodule stays cheap. Its
``build`` function is not: ``gatemill.flow.build`` is the module of ``gatemill build``; use
:meth:`Model.build <gatemill.flow.api.Model.build>` or ``gatemill.flow.api.build``.
"""

_API = (
    "BuildConfig",
    "BuildResult",
    "Model",
    "TrainConfig",
    "import_model",
    "train",
)


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
