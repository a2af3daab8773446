"""The demo of README's first command, on the best device present:

1. the main job: a LLaMA-3-8B-shaped SwiGLU feed-forward block (d_model 4096, d_ff 14336 on a GPU;
   1024 x 3584 on a CPU) through ffn_ext.nn.FeedForward (ffn_ext.swiglu, then the down
   projection), checked against the float64 formula and timed beside PyTorch eager
   (w2(silu(w1 x) * w3 x)) for decode (1 and 16 tokens) and prefill (2048 tokens) batches;
2. every element-wise activation, forward and backward, checked and timed the same way.

    python -m ffn_ext.demo [--device cuda|cpu] [--n ELEMENTS] [--tokens 1,16,2048]
"""

import argparse
import time

import torch
import torch.nn.functional as F

import ffn_ext
import ffn_ext.reference as R


def _time(fn, device, reps):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def _bound(ref, sens, dtype):
    """What a result may be off from the float64 reference `ref`, element by element, as the test
    suite allows (tests/conftest.py): in float32 1e-6 of the sensitivity |f| + |x f'| (sens), plus
    the smallest normal number; in bfloat16, computed in float32 and rounded once, one ulp of ref."""
    if dtype == torch.float32:
        return 1e-6 * sens + torch.finfo(dtype).smallest_normal
    return R.ulp(ref, dtype)


def _ffn_block(device, tokens, out):
    """Part 1; returns whether every result matched the float64 reference."""
    cuda = device.type == "cuda"
    d_model, d_ff = (4096, 14336) if cuda else (1024, 3584)
    dtype = torch.bfloat16 if cuda else torch.float32
    m = ffn_ext.nn.FeedForward.from_preset("llama", d_model, d_ff, device=device, dtype=dtype)
    w1, w3, w2 = m.w1.detach(), m.w3.detach(), m.w2.detach()

    def eager(x):
        return F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)

    def ref64(x):
        x64, a, b, c = (t.double().cpu() for t in (x, w1, w3, w2))
        return R.silu(x64 @ a.T) * (x64 @ b.T) @ c.T

    out(f"SwiGLU feed-forward, LLaMA-3-8B-shaped: d_model {d_model}, d_ff {d_ff}, {str(dtype)[6:]}, "
        f"ffn_ext.nn.FeedForward.from_preset('llama') vs eager w2(silu(w1 x) * w3 x)")
    out(f"{'tokens':>7} {'err ffn_ext':>12} {'err eager':>10} {'ffn_ext ms':>11} {'eager ms':>9} {'speed-up':>9}")
    ok = True
    with torch.inference_mode():
        for n in tokens:
            x = torch.randn(n, d_model, device=device, dtype=dtype)
            xs = x[:16]
            ref = ref64(xs)
            scale = ref.abs().max().item()
            err = (m(xs).double().cpu() - ref).abs().max().item() / scale
            err_eager = (eager(xs).double().cpu() - ref).abs().max().item() / scale
            ok &= err <= max(2 * err_eager, 4 * torch.finfo(dtype).eps)
            reps = 20 if cuda else max(2, min(20, 4096 // n))
            t_ours = _time(lambda: m(x), device, reps)
            t_eager = _time(lambda: eager(x), device, reps)
            out(f"{n:>7} {err:>12.2e} {err_eager:>10.2e} {t_ours * 1e3:>11.3f} {t_eager * 1e3:>9.3f} {t_eager / t_ours:>8.2f}x")
    out("(err: max |y - float64 reference| / max |reference| over the first 16 tokens; ffn_ext's must be "
        "at most twice eager's, or 4 eps)")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=None, help="elements per tensor (activations)")
    ap.add_argument("--tokens", default="1,16,2048", help="batch sizes of the feed-forward block")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    n = args.n or (1 << 26 if device.type == "cuda" else 1 << 22)
    reps = 20 if device.type == "cuda" else 5
    info = ffn_ext.info()
    print(f"ffn_ext {info['ffn_ext_version']} | torch {info['torch_version']} | device {device}"
          + (f" ({info['device_name']})" if device.type == "cuda" else f" ({torch.get_num_threads()} threads, {info['cpu_capability']})")
          + f" | CUDA kernels compiled: {info['cuda_kernels_compiled']} {info['cuda_archs']}")

    ok = _ffn_block(device, [int(t) for t in args.tokens.split(",")], print)
    print()
    cases = [  # name, ffn_ext, eager, f, f', f''
        ("gelu", lambda x: ffn_ext.gelu(x), lambda x: F.gelu(x), R.gelu, R.gelu_d1, R.gelu_d2),
        ("gelu tanh", lambda x: ffn_ext.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh"), R.gelu_tanh,
         R.gelu_tanh_d1, R.gelu_tanh_d2),
        ("silu", ffn_ext.silu, F.silu, R.silu, R.silu_d1, R.silu_d2),
        ("swish b=1.5", lambda x: ffn_ext.swish(x, 1.5), lambda x: x * torch.sigmoid(1.5 * x),
         lambda x: R.swish(x, 1.5), lambda x: R.swish_dx(x, 1.5), lambda x: R.swish_dxx(x, 1.5)),
        ("relu", ffn_ext.relu, torch.relu, R.relu, R.relu_d1, lambda x: torch.zeros_like(x)),
    ]
    print(f"{'op':<12} {'dtype':<9} {'err/bound':>9} {'ffn_ext ms':>11} {'eager ms':>9} {'speed-up':>9}")
    for dtype in (torch.float32, torch.bfloat16):
        x = 4 * torch.randn(n, dtype=dtype, device=device)
        g = torch.randn(n, dtype=dtype, device=device)
        xs, gs = x[: 1 << 16].double().cpu(), g[: 1 << 16].double().cpu()
        for name, ours, eager, f, d1, d2 in cases:
            # accuracy on a sample, the value and the gradient, element by element (_bound)
            y = ours(x[: 1 << 16]).double().cpu()
            xr = x[: 1 << 16].detach().clone().requires_grad_(True)
            (dx,) = torch.autograd.grad(ours(xr), xr, g[: 1 << 16])
            fx, gd1 = f(xs), gs * d1(xs)
            of_bound = 0.0
            for out, ref, sens in ((y, fx, fx.abs() + (xs * d1(xs)).abs()),
                                   (dx.double().cpu(), gd1, gd1.abs() + (gs * xs * d2(xs)).abs())):
                of_bound = max(of_bound, ((out - ref).abs() / _bound(ref, sens, dtype)).max().item())
            ok &= of_bound <= 1.0
            t_ours = _time(lambda: ours(x), device, reps)
            t_eager = _time(lambda: eager(x), device, reps)
            print(f"{name:<12} {str(dtype)[6:]:<9} {of_bound:>9.2f} {t_ours * 1e3:>11.3f} "
                  f"{t_eager * 1e3:>9.3f} {t_eager / t_ours:>8.2f}x")
    print("(err/bound: the largest ratio, over the value and the gradient of 65536 elements, of the error "
          "to what the tests allow: in float32 1e-6 of |f| + |x f'|, in bfloat16 one ulp; at most 1)")
    print("all results match the float64 reference" if ok else "MISMATCH against the float64 reference")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
