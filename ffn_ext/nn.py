"""torch.nn modules: the feed-forward block and the activations.

    FeedForward(d_model, d_ff, activation="swiglu", bias=False, device=None, dtype=None)
    FeedForward.from_preset("llama", d_model, d_ff)        # the model families of PRESETS
    GELU(approximate="none"), SiLU(), Swish(beta=1.0, learnable=False, channels=None), ReLU()

FeedForward's parameters are named as in LLaMA: w1 (gate projection, [d_ff, d_model]), w3 (up
projection, gated blocks only) and w2 (down projection, [d_model, d_ff]); b1, b3, b2 with
bias=True. LLaMA's reference code holds them in torch.nn.Linear modules, so its checkpoints name
them w1.weight, w3.weight, w2.weight: load_state_dict takes those keys too (and wN.bias for bN).
Gated blocks keep w3 directly after w1 (b3 after b1) in one allocation, so that on CUDA one GEMM
computes both projections (ffn_ext.projection); the two stay separate parameters, and the module
re-joins them after .to() / .half() / load_state_dict(assign=True) / copy.deepcopy / unpickling
split them. Correctness never depends on it: separate weights take two GEMMs.
"""

import math

import torch
from torch import nn

from . import functional as _F
from .projection import _gated, ungated_projection

__all__ = ["FeedForward", "GELU", "SiLU", "Swish", "ReLU", "PRESETS", "ACTIVATIONS"]

# FeedForward's activation -> (gating op's activation, gated)
ACTIVATIONS = {
    "swiglu": ("silu", True),
    "geglu": ("gelu", True),
    "geglu_tanh": ("gelu_tanh", True),
    "reglu": ("relu", True),
    "glu": ("sigmoid", True),
    "bilinear": ("identity", True),
    "gelu": ("gelu", False),
    "gelu_tanh": ("gelu_tanh", False),
    "relu": ("relu", False),
    "silu": ("silu", False),
}

# Model family -> (activation, bias): ../shared/REFERENCE.md, "Which models use which" (the
# activation), the families' published configurations (the biases, and the GELU form where that
# table names only "GELU": GPT-J's configuration says activation_function "gelu_new", BLOOM's code
# computes bloom_gelu, both the tanh form; Falcon's MLP is nn.GELU(), the exact one).
PRESETS = {
    "llama": ("swiglu", False),
    "mistral": ("swiglu", False),
    "mixtral": ("swiglu", False),
    "qwen": ("swiglu", False),
    "deepseek": ("swiglu", False),
    "palm": ("swiglu", False),
    "gemma": ("geglu_tanh", False),
    "t5-v1.1": ("geglu_tanh", False),
    "flan-t5": ("geglu_tanh", False),
    "mt5": ("geglu_tanh", False),
    "glm": ("geglu", True),
    "gpt2": ("gelu_tanh", True),
    "gpt-j": ("gelu_tanh", True),
    "bloom": ("gelu_tanh", True),
    "falcon": ("gelu", False),
    "bert": ("gelu", True),
    "roberta": ("gelu", True),
    "opt": ("relu", True),
    "t5": ("relu", False),
    "transformer": ("relu", True),
}


def _names(d):
    return ", ".join(f"'{k}'" for k in d)


class FeedForward(nn.Module):
    """The transformer feed-forward block: w2(act(w1 x) * w3 x) for gated activations ("swiglu",
    "geglu", "geglu_tanh", "reglu", "glu", "bilinear"), w2(act(w1 x)) for the others ("gelu",
    "gelu_tanh", "relu", "silu"). Parameters are initialised as torch.nn.Linear's."""

    def __init__(self, d_model, d_ff, activation="swiglu", bias=False, device=None, dtype=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"ffn_ext.nn.FeedForward: activation must be one of {_names(ACTIVATIONS)}, got '{activation}'"
            )
        for name, v in (("d_model", d_model), ("d_ff", d_ff)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ffn_ext.nn.FeedForward: {name} must be a positive int, got {v!r}")
        self.d_model, self.d_ff, self.activation = d_model, d_ff, activation
        self._act, self.gated = ACTIVATIONS[activation]
        kw = {"device": device, "dtype": dtype}
        if self.gated:
            w13 = torch.empty(2 * d_ff, d_model, **kw)
            self.w1 = nn.Parameter(w13[:d_ff])
            self.w3 = nn.Parameter(w13[d_ff:])
        else:
            self.w1 = nn.Parameter(torch.empty(d_ff, d_model, **kw))
            self.register_parameter("w3", None)
        self.w2 = nn.Parameter(torch.empty(d_model, d_ff, **kw))
        if bias and self.gated:
            b13 = torch.empty(2 * d_ff, **kw)
            self.b1, self.b3 = nn.Parameter(b13[:d_ff]), nn.Parameter(b13[d_ff:])
        elif bias:
            self.b1, self.b3 = nn.Parameter(torch.empty(d_ff, **kw)), None
        else:
            self.b1 = self.b3 = None
        self.b2 = nn.Parameter(torch.empty(d_model, **kw)) if bias else None
        self.reset_parameters()
        self.register_load_state_dict_pre_hook(FeedForward._linear_keys)
        self.register_load_state_dict_post_hook(FeedForward._after_load)

    @classmethod
    def from_preset(cls, name, d_model, d_ff, **kwargs):
        """The block of a model family (PRESETS): e.g. "llama" is SwiGLU without biases, "gpt2"
        tanh-GELU with biases. kwargs (device, dtype, bias) are passed on."""
        if name not in PRESETS:
            raise ValueError(f"ffn_ext.nn.FeedForward.from_preset: name must be one of {_names(PRESETS)}, got '{name}'")
        activation, bias = PRESETS[name]
        kwargs.setdefault("bias", bias)
        return cls(d_model, d_ff, activation=activation, **kwargs)

    def reset_parameters(self):
        with torch.no_grad():
            for w, b in ((self.w1, self.b1), (self.w3, self.b3), (self.w2, self.b2)):
                if w is None:
                    continue
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # torch.nn.Linear's initialisation
                if b is not None:
                    bound = 1 / math.sqrt(w.shape[1])
                    nn.init.uniform_(b, -bound, bound)

    @staticmethod
    def _joined(a, b):
        return (a.is_contiguous() and b.is_contiguous()
                and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
                and b.storage_offset() == a.storage_offset() + a.numel())

    def _join_w13(self):
        """Put w3 directly after w1 (and b3 after b1) in one allocation again (see the module
        docstring). Loading with assign=True from memory-mapped weights therefore copies w1 and w3
        once into memory of their own."""
        if not self.gated:
            return
        for a, b in ((self.w1, self.w3), (self.b1, self.b3)):
            if a is None or b is None or self._joined(a, b):
                continue
            with torch.no_grad():
                ab = torch.cat([a.detach(), b.detach()])
                a.data, b.data = ab[: a.shape[0]], ab[a.shape[0] :]

    @staticmethod
    def _linear_keys(module, state_dict, prefix, *_):
        """wN.weight -> wN and wN.bias -> bN (nn.Linear's keys, as in LLaMA's checkpoints); the
        state dict is load_state_dict's own copy."""
        for n in "123":
            for key, name in ((f"w{n}.weight", f"w{n}"), (f"w{n}.bias", f"b{n}")):
                if prefix + key in state_dict and prefix + name not in state_dict:
                    state_dict[prefix + name] = state_dict.pop(prefix + key)

    @staticmethod
    def _after_load(module, _incompatible_keys):  # a function, not a lambda: modules pickle
        module._join_w13()

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self._join_w13()
        return self

    def __setstate__(self, state):  # copy.deepcopy and unpickling give each parameter its own copy
        super().__setstate__(state)
        self._join_w13()

    def forward(self, x):
        # A refused x raises under this module's name (the parameters' own shapes agree by
        # construction, so the down projection cannot refuse what the first one accepted).
        if self.gated:
            z = _gated("nn.FeedForward", x, self.w1, self.w3, self.b1, self.b3, self._act)
        else:
            z = ungated_projection("nn.FeedForward", x, self.w1, self.b1, self._act)
        return torch.nn.functional.linear(z, self.w2, self.b2)

    def extra_repr(self):
        return f"d_model={self.d_model}, d_ff={self.d_ff}, activation='{self.activation}', bias={self.b1 is not None}"


class GELU(nn.Module):
    """ffn_ext.gelu as a module (approximate="none" or "tanh")."""

    def __init__(self, approximate="none"):
        super().__init__()
        from ._checks import check_approximate

        check_approximate("nn.GELU", approximate)
        self.approximate = approximate

    def forward(self, x):
        return _F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate='{self.approximate}'"


class SiLU(nn.Module):
    """ffn_ext.silu as a module."""

    def forward(self, x):
        return _F.silu(x)


class ReLU(nn.Module):
    """ffn_ext.relu as a module."""

    def forward(self, x):
        return _F.relu(x)


class Swish(nn.Module):
    """x * sigmoid(beta x). learnable=True makes beta an nn.Parameter: one value (channels=None)
    or one per channel of the input's last dimension (channels=C), each initialised to beta."""

    def __init__(self, beta=1.0, learnable=False, channels=None, device=None, dtype=None):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise TypeError(f"ffn_ext.nn.Swish: beta must be a number, got {type(beta).__name__}")
        if channels is not None and not learnable:
            raise ValueError("ffn_ext.nn.Swish: channels is for a learnable beta (learnable=True)")
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
            raise ValueError(f"ffn_ext.nn.Swish: channels must be a positive int, got {channels!r}")
        self.learnable = learnable
        if learnable:
            shape = () if channels is None else (channels,)
            self.beta = nn.Parameter(torch.full(shape, float(beta), device=device, dtype=dtype))
        else:
            self.beta = float(beta)

    def forward(self, x):
        return _F.swish(x, self.beta)

    def extra_repr(self):
        if self.learnable:
            return f"learnable=True, channels={None if self.beta.dim() == 0 else self.beta.shape[0]}"
        return f"beta={self.beta}"
