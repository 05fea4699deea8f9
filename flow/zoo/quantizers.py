"""Brevitas quantizer definitions that Brevitas does not ship.

The input quantizer's scale is a constant (not learned) power of two fixed from the training
data, so that the hardware's input format is known before training and, for the digits, exact.
Brevitas takes the constant as a threshold, ``max(|min_val|, |max_val|)``, and divides it by
the integer scaling to get the scale; the integer scaling is ``2**bits - 1`` unsigned and
``2**(bits - 1)`` signed (non-narrow).
"""

from __future__ import annotations

from brevitas.inject.enum import RestrictValueType, ScalingImplType, ScalingPerOutputType
from brevitas.quant.base import IntQuant, UintQuant
from brevitas.quant.solver import ActQuantSolver


class _ConstScaling(ActQuantSolver):
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    scaling_per_output_type = ScalingPerOutputType.TENSOR


class ConstUintActQuant(UintQuant, _ConstScaling):
    """Unsigned integer activations with a constant scale; set ``bit_width``,
    ``min_val=0`` and ``max_val`` (the threshold, ``scale * (2**bits - 1)``)."""


class ConstIntActQuant(IntQuant, _ConstScaling):
    """Signed (non-narrow) integer activations with a constant scale; set ``bit_width``,
    ``max_val`` (the threshold, ``scale * 2**(bits - 1)``) and ``min_val=-max_val``."""
