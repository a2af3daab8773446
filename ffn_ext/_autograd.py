"""Autograd of the activation ops, first and second order.

Every backward calls registered ffn_ext ops, so torch.compile traces it and the maths stays in
the kernels. The backward ops have autograd too, which is what makes second-order gradients
(gradgradcheck, Hessian-vector products) work:
    y = f(x)                      dx = f_backward(g, x)                 = g f'(x)
    dx = f_backward(g, x)         d(g) = f_backward(gg, x),  d(x) = f_double_backward(gg, g, x) = gg g f''(x)
Third-order gradients are not provided (the double-backward ops have no autograd).
Nothing but the op's inputs is saved, and saved inputs are never written to.
"""

import torch

ops = torch.ops.ffn_ext
lib = "ffn_ext::"


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*[t for t in inputs if isinstance(t, torch.Tensor)])
    ctx.nontensor = [a for a in inputs if not isinstance(a, torch.Tensor)]


# ---- GELU ----------------------------------------------------------------------------------
def _gelu_bwd(ctx, grad):
    (x,) = ctx.saved_tensors
    return ops.gelu_backward(grad, x, ctx.nontensor[0]), None


def _gelu_backward_bwd(ctx, gg):
    grad, x = ctx.saved_tensors
    approximate = ctx.nontensor[0]
    d_grad = ops.gelu_backward(gg, x, approximate) if ctx.needs_input_grad[0] else None
    d_x = ops.gelu_double_backward(gg, grad, x, approximate) if ctx.needs_input_grad[1] else None
    return d_grad, d_x, None


torch.library.register_autograd(lib + "gelu", _gelu_bwd, setup_context=_save_inputs)
torch.library.register_autograd(lib + "gelu_backward", _gelu_backward_bwd, setup_context=_save_inputs)


# ---- SiLU ----------------------------------------------------------------------------------
def _silu_bwd(ctx, grad):
    (x,) = ctx.saved_tensors
    return ops.silu_backward(grad, x)


def _silu_backward_bwd(ctx, gg):
    grad, x = ctx.saved_tensors
    d_grad = ops.silu_backward(gg, x) if ctx.needs_input_grad[0] else None
    d_x = ops.silu_double_backward(gg, grad, x) if ctx.needs_input_grad[1] else None
    return d_grad, d_x


torch.library.register_autograd(lib + "silu", _silu_bwd, setup_context=_save_inputs)
torch.library.register_autograd(lib + "silu_backward", _silu_backward_bwd, setup_context=_save_inputs)


# ---- Swish with a fixed beta -----------------------------------------------------------------
def _swish_bwd(ctx, grad):
    (x,) = ctx.saved_tensors
    return ops.swish_backward(grad, x, ctx.nontensor[0]), None


def _swish_backward_bwd(ctx, gg):
    grad, x = ctx.saved_tensors
    beta = ctx.nontensor[0]
    d_grad = ops.swish_backward(gg, x, beta) if ctx.needs_input_grad[0] else None
    d_x = ops.swish_double_backward(gg, grad, x, beta) if ctx.needs_input_grad[1] else None
    return d_grad, d_x, None


torch.library.register_autograd(lib + "swish", _swish_bwd, setup_context=_save_inputs)
torch.library.register_autograd(lib + "swish_backward", _swish_backward_bwd, setup_context=_save_inputs)


# ---- Swish with a tensor beta (learnable) ------------------------------------------------------
def _swish_t_bwd(ctx, grad):
    x, beta = ctx.saved_tensors
    dx, dbeta = ops.swish_backward.Tensor(grad, x, beta, ctx.needs_input_grad[1])
    return dx, (dbeta if ctx.needs_input_grad[1] else None)


def _swish_t_backward_setup(ctx, inputs, output):
    grad, x, beta, beta_requires_grad = inputs
    ctx.save_for_backward(grad, x, beta)
    ctx.beta_requires_grad = beta_requires_grad


def _swish_t_backward_bwd(ctx, ggx, ggb):
    grad, x, beta = ctx.saved_tensors
    if ggx is None:
        ggx = torch.zeros_like(x)
    if ggb is None or not ctx.beta_requires_grad:
        # grad_beta was not computed (an empty tensor) or not used: it contributes nothing.
        ggb = torch.zeros_like(beta)
    need_beta = ctx.needs_input_grad[2]
    d_grad, d_x, d_beta = ops.swish_double_backward.Tensor(ggx, ggb, grad, x, beta, need_beta)
    return (
        d_grad if ctx.needs_input_grad[0] else None,
        d_x if ctx.needs_input_grad[1] else None,
        d_beta if need_beta else None,
        None,
    )


torch.library.register_autograd(lib + "swish.Tensor", _swish_t_bwd, setup_context=_save_inputs)
torch.library.register_autograd(
    lib + "swish_backward.Tensor", _swish_t_backward_bwd, setup_context=_swish_t_backward_setup
)


# ---- ReLU ------------------------------------------------------------------------------------
def _relu_bwd(ctx, grad):
    (x,) = ctx.saved_tensors
    return ops.relu_backward(grad, x)


def _relu_backward_bwd(ctx, gg):
    _, x = ctx.saved_tensors
    # relu'' = 0, so the x-gradient of relu_backward is zero; None says so without a kernel.
    return (ops.relu_backward(gg, x) if ctx.needs_input_grad[0] else None), None


torch.library.register_autograd(lib + "relu", _relu_bwd, setup_context=_save_inputs)
torch.library.register_autograd(lib + "relu_backward", _relu_backward_bwd, setup_context=_save_inputs)


# ---- Third order: refused loudly -----------------------------------------------------------------
# Without an autograd registration PyTorch would treat these ops as constants and return a wrong
# (zero) third derivative with only a warning; a clear error is better than a silent zero.
def _third_order(name):
    def backward(ctx, *grads):
        raise NotImplementedError(
            f"ffn_ext.{name}: third-order gradients are not implemented (ffn_ext's activations are "
            f"differentiable twice)"
        )

    return backward


def _no_save(ctx, inputs, output):
    pass


for _name in ("gelu_double_backward", "silu_double_backward", "swish_double_backward", "swish_double_backward.Tensor"):
    torch.library.register_autograd(lib + _name, _third_order(_name.split(".")[0]), setup_context=_no_save)
