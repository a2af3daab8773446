"""ffn_ext: activation and gating kernels for transformer feed-forward blocks.

    import ffn_ext
    y = ffn_ext.gelu(x)                       # exact GELU; approximate="tanh" for the tanh form
    y = ffn_ext.silu(x)
    y = ffn_ext.swish(x, beta=1.5)            # beta: a number, or a 0-dim / per-channel tensor
    y = ffn_ext.relu(x)
    y = ffn_ext.act_and_mul(gate, up, "silu")  # act(gate) * up; also "gelu", "sigmoid", ...
    y = ffn_ext.silu_and_mul(h)               # packed h [..., 2d]: silu(h[..., :d]) * h[..., d:]
    y = ffn_ext.swiglu(x, w1, w3)             # silu(x @ w1.T) * (x @ w3.T); geglu, reglu, gated_linear
    y = ffn_ext.ffn(x, w1, w2, w3)            # the whole feed-forward block
    m = ffn_ext.nn.FeedForward.from_preset("llama", 4096, 14336)
    ffn_ext.info()                            # build and runtime facts

The ops are registered as torch.ops.ffn_ext.*, with fake kernels (torch.compile, export) and
autograd up to second order. Formulas: README.md and ../shared/REFERENCE.md.
"""

from ._library import load_library as _load_library

_load_library()

from . import _fake  # noqa: E402,F401  (registrations; autograd is in csrc/autograd.cpp)
from ._info import info  # noqa: E402
from .functional import gelu, relu, silu, swish  # noqa: E402
from .gating import (  # noqa: E402
    act_and_mul,
    act_and_mul_packed,
    gelu_and_mul,
    gelu_tanh_and_mul,
    glu,
    silu_and_mul,
)
from .projection import ffn, gated_linear, geglu, reglu, swiglu  # noqa: E402
from . import nn  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "gelu",
    "silu",
    "swish",
    "relu",
    "act_and_mul",
    "act_and_mul_packed",
    "silu_and_mul",
    "gelu_and_mul",
    "gelu_tanh_and_mul",
    "glu",
    "swiglu",
    "geglu",
    "reglu",
    "gated_linear",
    "ffn",
    "nn",
    "info",
]
