"""A fake ``pynq`` whose DMA runs the golden model on the packed bytes, and a fresh driver import.

The driver a build writes is the package ``gatemill_driver``; every build has its own copy, so a
test imports it from its build folder after dropping any copy an earlier test imported.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np

from gatemill.flow.packing import pack, unpack


def fake_pynq(monkeypatch, ir, manifest) -> None:
    """Install a ``pynq`` module whose DMA transfer computes ``ir`` on the packed input."""
    sent = {}

    class Channel:
        def __init__(self, role):
            self.role = role

        def transfer(self, buf):
            sent[self.role] = buf

        def wait(self):
            if self.role == "send":
                q = unpack(np.array(sent["send"]), manifest["input"])
                sent["recv"][:] = pack(ir.execute(q), manifest["output"]).reshape(-1)

    class Buffer(np.ndarray):
        def freebuffer(self):
            pass

    fake = types.ModuleType("pynq")
    fake.allocate = lambda shape, dtype: np.zeros(shape, dtype).view(Buffer)
    fake.Overlay = lambda path: types.SimpleNamespace(
        dma=types.SimpleNamespace(sendchannel=Channel("send"), recvchannel=Channel("recv"))
    )
    monkeypatch.setitem(sys.modules, "pynq", fake)


def import_driver(monkeypatch, build_folder):
    """The ``gatemill_driver`` package of ``build_folder``, not one an earlier test imported."""
    for name in [m for m in sys.modules if m.split(".")[0] == "gatemill_driver"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(build_folder / "driver"))
    driver = importlib.import_module("gatemill_driver")
    # undo removes what this test imported, so the next test cannot see this build's driver
    for name in [m for m in sys.modules if m.split(".")[0] == "gatemill_driver"]:
        monkeypatch.setitem(sys.modules, name, sys.modules[name])
    return driver
