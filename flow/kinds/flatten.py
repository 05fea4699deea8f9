"""``Flatten``: ``(H, W, C)`` to ``(H*W*C,)`` in channels-last order. It needs no hardware and
no HLS kernel: the stream already carries the elements in that order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..ir.fields import int_tuple
from .base import DataMover, Layer


@dataclass(frozen=True, kw_only=True, eq=False)
class Flatten(DataMover, Layer):
    """Channels-last flatten.

    Parameters
    ----------
    ifm : tuple of int
    dtype : DataType
    """

    kind: ClassVar[str] = "Flatten"
    hardware: ClassVar[bool] = False
    ifm: tuple[int, ...]
    dtype: Any

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "ifm")

    @property
    def out_shape(self):
        return (int(np.prod(self.ifm)),)

    def execute(self, x):
        x = self.check_input(x)
        return x.reshape(len(x), -1)

    def hls(self, builder):
        """Nothing: the stream is already in channels-last order."""

    def describe(self):
        return f"{self.dtype.name}, free (the stream is already channels-last)"
