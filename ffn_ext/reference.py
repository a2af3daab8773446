"""float64 reference formulas, written directly from ../shared/REFERENCE.md with plain torch
float64 operations (never the ffn_ext kernels). The tests compare every kernel against these.

Each function upcasts to float64 and returns float64. At x = +-inf they return the mathematical
limit, which the closed forms alone would turn into inf * 0 = NaN.
"""

import math

import torch

K_TANH = math.sqrt(2.0 / math.pi)
C_TANH = 0.044715


def ulp(ref64, dtype):
    """Spacing of `dtype`'s values at |ref64| (its subnormal spacing near 0): the one-ulp part of
    the low-precision bounds, in the tests and in the demo."""
    fi = torch.finfo(dtype)
    _, e = torch.frexp(ref64.abs().clamp_min(fi.smallest_normal))  # |ref| in [2^(e-1), 2^e)
    return torch.ldexp(torch.full_like(ref64, fi.eps), e - 1)


def _f64(*ts):
    return [t.to(torch.float64) if isinstance(t, torch.Tensor) else torch.tensor(float(t), dtype=torch.float64) for t in ts]


def _limits(x, value, at_pos_inf, at_neg_inf):
    value = torch.where(x == math.inf, torch.as_tensor(at_pos_inf, dtype=torch.float64), value)
    return torch.where(x == -math.inf, torch.as_tensor(at_neg_inf, dtype=torch.float64), value)


def _decay(p, v):
    """v where the exponentially small factor p is 0: the limit of p * poly(x) is 0 there (the
    exponential wins), which float64 would otherwise turn into 0 * inf = NaN for huge |x|."""
    return torch.where(p == 0, torch.zeros_like(v), v)


def sigmoid(z):
    """1 / (1 + e^-z), taken as e^z / (1 + e^z) for z < 0. The first form alone overflows e^-z for
    z < -709.8 and gives 0 where sigma is still a float64 (e^z, down to z = -745), which tanh-GELU's
    f' multiplies by ~2000 back into the normal range: f'(-21.18) = -1.63e-306 came out 0 (found
    by test_each_cpu_loop's random inputs on 2026-11-28, where the kernels had it right)."""
    e = torch.exp(-z.abs())
    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_diff(z):
    """sigmoid(-z) - sigmoid(z) = -tanh(z / 2), without the difference's cancellation near 0."""
    return -torch.tanh(0.5 * z)


def Phi(x):  # standard normal CDF, erfc form (no cancellation for x << 0)
    return 0.5 * torch.special.erfc(-x / math.sqrt(2.0))


def phi(x):  # standard normal PDF
    return torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# ---- GELU (exact) ----
def gelu(x, approximate="none"):
    (x,) = _f64(x)
    if approximate == "tanh":
        return gelu_tanh(x)
    return _limits(x, _decay(Phi(x), x * Phi(x)), math.inf, 0.0)


def gelu_d1(x, approximate="none"):
    (x,) = _f64(x)
    if approximate == "tanh":
        return gelu_tanh_d1(x)
    return _limits(x, Phi(x) + _decay(phi(x), x * phi(x)), 1.0, 0.0)


def gelu_d2(x, approximate="none"):
    (x,) = _f64(x)
    if approximate == "tanh":
        return gelu_tanh_d2(x)
    return _limits(x, _decay(phi(x), phi(x) * (2.0 - x * x)), 0.0, 0.0)


# ---- GELU (tanh form): (1 + tanh u)/2 evaluated as sigmoid(2u), the same number ----
def _u(x):
    return K_TANH * (x + C_TANH * x**3)


def gelu_tanh(x):
    (x,) = _f64(x)
    s = sigmoid(2 * _u(x))
    return _limits(x, _decay(s, x * s), math.inf, 0.0)


def gelu_tanh_d1(x):
    (x,) = _f64(x)
    u = _u(x)
    t = torch.tanh(u)
    one_minus_t2 = 4 * sigmoid(2 * u) * sigmoid(-2 * u)  # 1 - tanh^2 without cancellation
    up = K_TANH * (1 + 3 * C_TANH * x * x)
    return _limits(x, sigmoid(2 * u) + _decay(one_minus_t2, 0.5 * x * one_minus_t2 * up), 1.0, 0.0)


def gelu_tanh_d2(x):
    (x,) = _f64(x)
    u = _u(x)
    t = torch.tanh(u)
    one_minus_t2 = 4 * sigmoid(2 * u) * sigmoid(-2 * u)
    up = K_TANH * (1 + 3 * C_TANH * x * x)
    upp = 6 * K_TANH * C_TANH * x
    v = one_minus_t2 * (up + 0.5 * x * (upp - 2 * t * up * up))
    return _limits(x, _decay(one_minus_t2, v), 0.0, 0.0)


# ---- Swish-beta (SiLU is beta = 1) ----
def _bx(x, beta):
    """beta x; at beta = 0 it is 0 for every x but NaN (0 * inf would be NaN; swish is then x / 2)."""
    return torch.where(beta == 0, torch.where(torch.isnan(x), x, torch.zeros_like(x)), beta * x)


def _sigmoids(x, beta):
    """(beta x, sigmoid(beta x), sigmoid(-beta x)), each sigmoid on its own (1 - s cancels)."""
    bx = _bx(x, beta)
    return bx, sigmoid(bx), sigmoid(-bx)


def swish(x, beta=1.0):
    x, beta = _f64(x, beta)
    s = sigmoid(_bx(x, beta))
    v = _decay(s, x * s)
    pos = torch.where(beta > 0, math.inf, torch.where(beta < 0, 0.0, math.inf))
    neg = torch.where(beta > 0, 0.0, -math.inf)
    return _limits(x, v, pos.expand_as(v), neg.expand_as(v))


def swish_dx(x, beta=1.0):
    x, beta = _f64(x, beta)
    bx, s, sn = _sigmoids(x, beta)
    v = s + _decay(s * sn, bx * s * sn)
    pos = torch.where(beta > 0, 1.0, torch.where(beta < 0, 0.0, 0.5))
    neg = torch.where(beta > 0, 0.0, torch.where(beta < 0, 1.0, 0.5))
    return _limits(x, v, pos.expand_as(v), neg.expand_as(v))


def swish_dbeta(x, beta=1.0):
    x, beta = _f64(x, beta)
    bx, s, sn = _sigmoids(x, beta)
    return _decay(s * sn, x * x * s * sn)


def swish_dxx(x, beta=1.0):
    x, beta = _f64(x, beta)
    bx, s, sn = _sigmoids(x, beta)
    return _decay(s * sn, beta * s * sn * (2 + bx * (sn - s)))


def swish_dxb(x, beta=1.0):
    x, beta = _f64(x, beta)
    bx, s, sn = _sigmoids(x, beta)
    return _decay(s * sn, x * s * sn * (2 + bx * (sn - s)))


def swish_dbb(x, beta=1.0):
    x, beta = _f64(x, beta)
    bx, s, sn = _sigmoids(x, beta)
    d = sigmoid_diff(bx)
    # sn - s = 0 exactly where beta x = 0: the term is 0 there even for an infinite x
    return _decay(s * sn, _decay(d, x**3 * s * sn * d))


def silu(x):
    return swish(x, 1.0)


def silu_d1(x):
    return swish_dx(x, 1.0)


def silu_d2(x):
    return swish_dxx(x, 1.0)


# ---- ReLU ----
def relu(x):
    (x,) = _f64(x)
    return torch.where(x > 0, x, torch.where(torch.isnan(x), x, torch.zeros_like(x)))


def relu_d1(x):
    (x,) = _f64(x)
    return torch.where(x > 0, 1.0, torch.where(torch.isnan(x), x, torch.zeros_like(x)))
