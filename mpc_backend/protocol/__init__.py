"""Protocol math: task specs, report encoding, result decoding, committees, DP noise.

Pure functions without I/O; the node's round logic builds on these.
"""

from .committee import Member, select_committee
from .encoding import encode_report, vector_layout, vector_length
from .noise import component_scales, discrete_laplace, noise_vector, to_field
from .statistics import QUANTILES, decode_aggregate
from .task import MAX_CONTRIBUTORS, STATS, TaskSpec, derive_task_id

__all__ = [
    "MAX_CONTRIBUTORS",
    "QUANTILES",
    "STATS",
    "Member",
    "TaskSpec",
    "component_scales",
    "decode_aggregate",
    "derive_task_id",
    "discrete_laplace",
    "encode_report",
    "noise_vector",
    "select_committee",
    "to_field",
    "vector_layout",
    "vector_length",
]
