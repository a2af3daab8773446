"""Peak memory of one call, on CUDA and on the CPU; the tests and the benchmarks share it.

CUDA's caching allocator keeps a peak statistic. The CPU allocator keeps none, but it reports
every allocation and free to the profiler (profile_memory=True), so the peak is the running sum of
those reports, in the order they happened.
"""

import contextlib
import os

import torch


@contextlib.contextmanager
def _quiet_stderr():
    """Kineto prints start/stop lines on file descriptor 2 (not through sys.stderr) each time a
    profile starts or stops; they would break the benchmarks' progress line."""
    try:
        fd = os.dup(2)
    except OSError:  # no descriptor 2 to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def _cpu_memory(fn):
    # torch.autograd.profiler's own profile: torch.profiler.profile wraps it and warns, once, that
    # it drops events between cycles, which one call has none of.
    with _quiet_stderr(), torch.autograd.profiler.profile(use_kineto=True, profile_memory=True) as prof:
        fn()
    cpu = torch._C._autograd.DeviceType.CPU
    events = [e for e in prof.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == cpu]
    running = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        running += e.nbytes()  # negative for a free
        peak = max(peak, running)
    return peak, running


def cuda_memory_stats(device):
    """Whether PyTorch's CUDA caching allocator keeps statistics on `device`. It does not where it
    is bypassed (PYTORCH_NO_CUDA_MEMORY_CACHING=1, as tools/gpu_check.sh sets for compute-sanitizer's
    memcheck, or torch.cuda.memory.caching_allocator_enable(False)): every tensor is then a
    cudaMalloc of its own and torch.cuda.memory_allocated() stays where it was. Asked by allocating
    one element, which the allocator counts as 512 bytes when it counts."""
    before = torch.cuda.memory_allocated(device)
    probe = torch.empty(1, device=device)
    counted = torch.cuda.memory_allocated(device) != before
    del probe
    return counted


def memory_of(fn, device):
    """(peak, held): the most memory that one call of fn() holds at any moment beyond what was
    allocated before it, and what it still holds when it returns; bytes. On CUDA from the caching
    allocator's statistics (kernels' workspaces included), on the CPU from the allocations and
    frees the CPU allocator reports to the profiler. On CUDA without statistics
    (cuda_memory_stats) it refuses, rather than return zeros."""
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_memory(fn)
    if device.type != "cuda":
        raise ValueError(f"memory_of: device must be cpu or cuda, got {device}")
    if not cuda_memory_stats(device):
        raise RuntimeError(f"memory_of: PyTorch's CUDA caching allocator keeps no statistics on {device} (it is "
                           "bypassed: PYTORCH_NO_CUDA_MEMORY_CACHING is set, or caching_allocator_enable(False)), "
                           "so there is nothing to measure with")
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base, torch.cuda.memory_allocated(device) - base
