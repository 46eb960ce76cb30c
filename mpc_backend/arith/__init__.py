"""Share arithmetic: GF(2^61 - 1) and Z/2^64 over numpy uint64 arrays.

Field operations (compiled, GIL released), Shamir t-of-k sharing, additive ring
sharing, the AES-CTR-based FieldRNG and fixed-point encoding of readings.
Convention: t is the polynomial degree, so t shares reveal nothing and any
t + 1 reconstruct ("2-of-5" means t = 2, k = 5).
"""

try:
    from . import _field  # noqa: F401  (compiled kernels; fail here with a useful message)
except ImportError as err:
    raise ImportError(
        "mpc_backend.arith._field is not compiled for this Python; build it with "
        "`python setup.py build_ext --inplace` or `pip install -e .` (needs Cython >= 3)"
    ) from err

from ._checks import MAX_PARTIES, P
from .field import field_add, field_mul, field_neg, field_scale, field_sub, field_sum_rows
from .fixed_point import FixedPoint
from .ring import ring_add, ring_share, ring_sub, ring_sum_rows
from .rng import SEED_BYTES, FieldRNG
from .shamir import aggregate_and_reconstruct, lagrange_at_zero, shamir_reconstruct, shamir_share

__all__ = [
    "MAX_PARTIES",
    "SEED_BYTES",
    "FieldRNG",
    "FixedPoint",
    "P",
    "aggregate_and_reconstruct",
    "field_add",
    "field_mul",
    "field_neg",
    "field_scale",
    "field_sub",
    "field_sum_rows",
    "lagrange_at_zero",
    "ring_add",
    "ring_share",
    "ring_sub",
    "ring_sum_rows",
    "shamir_reconstruct",
    "shamir_share",
]
