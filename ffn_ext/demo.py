"""The short demo of README's first command: runs every activation, forward and backward, on the
best device present, checks it against the float64 reference formulas, and prints its time beside
PyTorch eager.

    python -m ffn_ext.demo [--device cuda|cpu] [--n ELEMENTS]
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=None, help="elements per tensor")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    n = args.n or (1 << 26 if device.type == "cuda" else 1 << 22)
    reps = 20 if device.type == "cuda" else 5
    info = ffn_ext.info()
    print(f"ffn_ext {info['ffn_ext_version']} | torch {info['torch_version']} | device {device}"
          + (f" ({info['device_name']})" if device.type == "cuda" else f" ({torch.get_num_threads()} threads, {info['cpu_capability']})")
          + f" | CUDA kernels compiled: {info['cuda_kernels_compiled']} {info['cuda_archs']}")

    cases = [
        ("gelu", lambda x: ffn_ext.gelu(x), lambda x: F.gelu(x), R.gelu, R.gelu_d1),
        ("gelu tanh", lambda x: ffn_ext.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh"), R.gelu_tanh, R.gelu_tanh_d1),
        ("silu", ffn_ext.silu, F.silu, R.silu, R.silu_d1),
        ("swish b=1.5", lambda x: ffn_ext.swish(x, 1.5), lambda x: x * torch.sigmoid(1.5 * x),
         lambda x: R.swish(x, 1.5), lambda x: R.swish_dx(x, 1.5)),
        ("relu", ffn_ext.relu, torch.relu, R.relu, R.relu_d1),
    ]
    print(f"{'op':<12} {'dtype':<9} {'max err vs fp64 ref':>20} {'ffn_ext ms':>11} {'eager ms':>9} {'speed-up':>9}")
    ok = True
    for dtype in (torch.float32, torch.bfloat16):
        x = 4 * torch.randn(n, dtype=dtype, device=device)
        g = torch.randn(n, dtype=dtype, device=device)
        xs = x[: 1 << 16].double().cpu()
        for name, ours, eager, ref, d1 in cases:
            # accuracy on a sample, forward and backward, relative to the function's scale
            y = ours(x[: 1 << 16]).double().cpu()
            xr = x[: 1 << 16].detach().clone().requires_grad_(True)
            (dx,) = torch.autograd.grad(ours(xr), xr, g[: 1 << 16])
            scale = ref(xs).abs() + 1.0
            err = max(((y - ref(xs)).abs() / scale).max().item(),
                      ((dx.double().cpu() - g[: 1 << 16].double().cpu() * d1(xs)).abs() / (d1(xs).abs() + 1.0)).max().item())
            limit = 1e-5 if dtype == torch.float32 else 2e-2
            ok &= err <= limit
            t_ours = _time(lambda: ours(x), device, reps)
            t_eager = _time(lambda: eager(x), device, reps)
            print(f"{name:<12} {str(dtype)[6:]:<9} {err:>20.2e} {t_ours * 1e3:>11.3f} {t_eager * 1e3:>9.3f} {t_eager / t_ours:>8.2f}x")
    print("all results match the float64 reference" if ok else "MISMATCH against the float64 reference")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
