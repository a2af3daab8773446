"""Error messages: each bad input is refused before any kernel runs, naming the op, the argument,
what was expected and what arrived, by the compiled op and by its fake (meta) kernel alike."""

import pytest
import torch

import ffn_ext
import ffn_ext.reference as R

ops = torch.ops.ffn_ext
DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64])
@pytest.mark.parametrize("name", ["gelu", "silu", "relu", "swish"])
def test_non_float_input(name, dtype, dev):
    x = torch.zeros(3, 4, dtype=dtype, device=dev)
    with pytest.raises(TypeError, match=rf"ffn_ext.{name}: x must be a floating-point tensor \(torch.float32, "
                       rf"torch.float64, torch.float16 or torch.bfloat16\), got {dtype}"):
        getattr(ffn_ext, name)(x)


def _other_dtypes():
    """Every dtype torch names beside the four floating ones, once each (aliases share a dtype)."""
    floats = {torch.float32, torch.float64, torch.float16, torch.bfloat16}
    found = {getattr(torch, n) for n in dir(torch) if isinstance(getattr(torch, n), torch.dtype)}
    return sorted(found - floats, key=str)


@pytest.mark.filterwarnings("ignore:.*support is experimental")  # complex32, bcomplex32
@pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions")
def test_every_other_dtype_named_as_python_names_it(dev):
    """The dtype error names every other dtype as Python prints it (torch.float8_e4m3fn,
    torch.uint16, torch.bits8; the C++ op once said torch.Float8_e4m3fn), as the fake kernel does.
    Dtypes that cannot make a plain tensor on the device (the quantized ones, some on the GPU) are
    left to test_quantized_and_nested_refused."""
    checked = 0
    for dtype in _other_dtypes():
        try:
            x = torch.zeros(3, 4, dtype=dtype, device=dev)
        except Exception:  # noqa: BLE001 (no plain tensor of this dtype here)
            continue
        with pytest.raises(TypeError, match=rf"^ffn_ext.gelu: x must be a floating-point tensor \(torch.float32, "
                           rf"torch.float64, torch.float16 or torch.bfloat16\), got {dtype}$"):
            ffn_ext.gelu(x)
        checked += 1
    assert checked >= 10, checked  # the integer and complex dtypes at least


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions")
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_quantized_and_nested_refused():
    """Quantized and nested tensors get the op's own error naming the argument (the dtype for a
    quantized one), not the dispatcher's 'Could not run ... from the QuantizedCPU backend'."""
    q = torch.quantize_per_tensor(torch.randn(3, 8), 0.1, 0, torch.qint8)
    nested = torch.nested.nested_tensor([torch.randn(2, 8), torch.randn(3, 8)])
    dense = torch.randn(3, 8)
    dtype_text = r"must be a floating-point tensor \(torch.float32, torch.float64, torch.float16 or torch.bfloat16\), got torch.qint8$"
    for what, call in {"gelu: x": lambda: ffn_ext.gelu(q), "gelu_backward: x": lambda: ops.gelu_backward(dense, q),
                       "act_and_mul: up": lambda: ffn_ext.act_and_mul(dense, q),
                       "silu_and_mul: h": lambda: ffn_ext.silu_and_mul(q),
                       "swiglu: x": lambda: ffn_ext.swiglu(q, torch.randn(2, 8), torch.randn(2, 8))}.items():
        with pytest.raises(TypeError, match=rf"^ffn_ext.{what} {dtype_text}"):
            call()
    for what, call in {"gelu: x": lambda: ffn_ext.gelu(nested), "act_and_mul: gate": lambda: ffn_ext.act_and_mul(nested, nested),
                       "silu_and_mul: h": lambda: ffn_ext.silu_and_mul(nested)}.items():
        with pytest.raises(RuntimeError, match=rf"^ffn_ext.{what} must be a strided \(dense\) tensor, got a nested tensor$"):
            call()


def test_unknown_approximate(dev):
    x = torch.randn(3, device=dev)
    msg = r"ffn_ext.gelu: approximate must be one of 'none', 'tanh', got 'erf'"
    with pytest.raises(ValueError, match=msg):
        ffn_ext.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match=r"ffn_ext.gelu_backward: approximate must be one of 'none', 'tanh', got 'Tanh'"):
        ops.gelu_backward(x, x, "Tanh")


def test_beta_shape(dev):
    x = torch.randn(4, 6, device=dev)
    with pytest.raises(ValueError, match=r"ffn_ext.swish: beta must be 0-dim or have shape \[x.shape\[-1\]\] = \[6\], "
                       r"got shape \[4\] for x of shape \[4, 6\]"):
        ffn_ext.swish(x, torch.ones(4, device=dev))
    with pytest.raises(ValueError, match=r"got shape \[1, 6\] for x of shape \[4, 6\]"):
        ffn_ext.swish(x, torch.ones(1, 6, device=dev))
    with pytest.raises(ValueError, match=r"= \(none: x is 0-dim\), got shape \[1\] for x of shape \[\]"):
        ffn_ext.swish(torch.tensor(1.0, device=dev), torch.ones(1, device=dev))


def test_beta_dtype(dev):
    x = torch.randn(4, 6, device=dev)
    with pytest.raises(TypeError, match=r"ffn_ext.swish: beta must be a floating-point tensor .* got torch.int64"):
        ffn_ext.swish(x, torch.ones(6, dtype=torch.int64, device=dev))
    with pytest.raises(TypeError, match=r"ffn_ext.swish: beta must be a number or a tensor, got str"):
        ffn_ext.swish(x, "1.0")


def test_backward_argument_mismatch(dev):
    x = torch.randn(4, 6, device=dev)
    with pytest.raises(ValueError, match=r"ffn_ext.silu_backward: grad must have the same shape as x, got \[4, 5\] and \[4, 6\]"):
        ops.silu_backward(torch.randn(4, 5, device=dev), x)
    with pytest.raises(TypeError, match=r"ffn_ext.gelu_backward: grad must have the same dtype as x \(torch.float32\), got torch.float64"):
        ops.gelu_backward(x.double(), x)
    with pytest.raises(ValueError, match=r"ffn_ext.swish_double_backward: grad_grad must have the same shape as x, got \[6\] and \[4, 6\]"):
        ops.swish_double_backward(torch.randn(6, device=dev), x, x, 1.0)


def test_mixed_device_on_cpu_and_meta():
    x = torch.randn(4, 6)
    with pytest.raises(RuntimeError, match=r"ffn_ext.relu_backward: grad must be on the same device as x \(cpu\), got meta"):
        ops.relu_backward(torch.randn(4, 6, device="meta"), x)


def test_not_a_tensor():
    with pytest.raises(TypeError, match=r"ffn_ext.gelu: x must be a tensor, got list"):
        ffn_ext.gelu([1.0, 2.0])


LAYOUTS = {"sparse_coo": lambda t: t.to_sparse(), "sparse_csr": lambda t: t.to_sparse_csr(),
           "_mkldnn": lambda t: t.to_mkldnn()}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_other_layouts_refused(layout):
    """Sparse and MKL-DNN tensors: the op's own error, naming the argument and the layout (not the
    dispatcher's 'Could not run ... with arguments from the SparseCPU backend')."""
    if layout == "_mkldnn" and not torch.backends.mkldnn.is_available():
        pytest.skip("PyTorch built without MKL-DNN")
    t, dense = LAYOUTS[layout](torch.randn(3, 4)), torch.randn(3, 4)
    text = rf"must be a strided \(dense\) tensor, got layout torch.{layout}$"
    calls = {"gelu: x": lambda: ffn_ext.gelu(t), "gelu: x ": lambda: ops.gelu(t),
             "gelu_backward: grad": lambda: ops.gelu_backward(t, dense),
             "act_and_mul: up": lambda: ffn_ext.act_and_mul(dense, t),
             "act_and_mul_packed: h": lambda: ops.act_and_mul_packed(t),
             "swish: beta": lambda: ops.swish.Tensor(dense, t),
             "swiglu: x": lambda: ffn_ext.swiglu(t, torch.randn(2, 4), torch.randn(2, 4)),
             "gated_linear: x": lambda: ops.gated_linear(t, torch.randn(2, 4), torch.randn(2, 4), None, None, "silu", 1.0)}
    for what, call in calls.items():
        with pytest.raises(RuntimeError, match=rf"^ffn_ext.{what.strip()} {text}"):
            call()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # torch.func's import, torch 2.14
@pytest.mark.filterwarnings("ignore:There is a performance drop")  # vmap's fallback, one call per element
def test_torch_func_differentiation_refused_with_the_op_name():
    """torch.func.grad, vjp, jacrev and hessian cannot transform a C++ autograd Function; PyTorch's
    own refusal names no op, this one names the op called (the public one) and what works. vmap
    runs, and autograd through its result gives the gradients."""
    x = torch.randn(6, dtype=torch.float64)
    w = torch.randn(2, 6, dtype=torch.float64)
    calls = {"gelu": lambda t: ffn_ext.gelu(t), "silu": lambda t: ops.silu(t),
             "swish": lambda t: ffn_ext.swish(torch.ones(6, dtype=torch.float64), t),  # a tensor beta
             "swish_double_backward": lambda t: ops.swish_double_backward(t, t, t, 1.5),
             "act_and_mul_packed": lambda t: ops.act_and_mul_packed(t.view(3, 2)),
             "silu_and_mul": lambda t: ffn_ext.silu_and_mul(t.view(3, 2)),
             "act_and_mul_double_backward": lambda t: ops.act_and_mul_double_backward(t, t, t, t, t, "relu", 1.0)[1],
             "gated_linear": lambda t: ops.gated_linear(t.view(1, 6), w, w, None, None, "silu", 1.0),
             "swiglu": lambda t: ffn_ext.swiglu(t.view(1, 6), w, w),
             "glu": lambda t: ffn_ext.glu(t.view(3, 2)),
             "ffn": lambda t: ffn_ext.ffn(t.view(1, 6), w, w.t(), activation="gelu_tanh"),  # ungated
             "nn.FeedForward": lambda t: ffn_ext.nn.FeedForward(6, 4, dtype=torch.float64)(t.view(1, 6))}
    ungated = ffn_ext.nn.FeedForward(6, 4, "relu", dtype=torch.float64)
    text = r"torch.func.grad, vjp, jacrev and hessian are not supported: .* use torch.autograd.grad"
    for op, f in [*calls.items(), ("nn.FeedForward", lambda t: ungated(t.view(1, 6)))]:
        with pytest.raises(RuntimeError, match=rf"^ffn_ext.{op}: {text}"):
            torch.func.grad(lambda t: f(t).sum())(x)
        with pytest.raises(RuntimeError, match=rf"^ffn_ext.{op}: {text}"):
            torch.func.jacrev(f)(x)
    xs = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    ys = torch.func.vmap(lambda t: ffn_ext.act_and_mul(t, t, "gelu"))(xs)
    (g,) = torch.autograd.grad(ys.sum(), xs)
    x64 = xs.detach()
    torch.testing.assert_close(g, R.gelu_d1(x64) * x64 + R.gelu(x64), rtol=1e-12, atol=1e-12)  # d(gelu(t) t)/dt


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # torch.func's import, torch 2.14
def test_forward_mode_ad_refused():
    """The ops have no jvp: a dual input is refused with the op's name, whether or not it requires
    grad (one that did not took the no-grad path and came back without a tangent, zeros under
    torch.func.jvp)."""
    import torch.autograd.forward_ad as fwAD

    x, v = torch.randn(6), torch.randn(6)
    calls = {"gelu": lambda t: ffn_ext.gelu(t), "silu": lambda t: ops.silu(t),
             "swish": lambda t: ffn_ext.swish(torch.ones(6), t),  # the tangent on a tensor beta
             "act_and_mul_packed": lambda t: ops.act_and_mul_packed(t.view(3, 2)),
             "silu_and_mul": lambda t: ffn_ext.silu_and_mul(t.view(3, 2), out=torch.empty(3, 1)),  # public name
             "gated_linear": lambda t: ops.gated_linear(t.view(1, 6), torch.randn(2, 6), torch.randn(2, 6), None, None,
                                                        "silu", 1.0),
             "swiglu": lambda t: ffn_ext.swiglu(t.view(1, 6), torch.randn(2, 6), torch.randn(2, 6)),  # public name
             "nn.FeedForward": lambda t: ffn_ext.nn.FeedForward(6, 4)(t.view(1, 6))}
    text = r"forward-mode AD \(dual tensors, torch.func.jvp\) is not implemented"
    for op, f in calls.items():
        with pytest.raises(RuntimeError, match=rf"ffn_ext.{op}: {text}"):
            torch.func.jvp(f, (x,), (v,))
        with fwAD.dual_level(), pytest.raises(RuntimeError, match=rf"ffn_ext.{op}: {text}"):
            f(fwAD.make_dual(x.clone().requires_grad_(op == "gelu"), v))
