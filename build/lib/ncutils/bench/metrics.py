"""Benchmark of the streaming metrics engine (python -m ncutils.bench metrics [--full] [--threads N]).

1. Engine vs naive on the same synthetic features (K = 10 Gaussian classes, float32, batches of
   128 generated from a seed, so both passes and both methods see identical values):
   - engine: ClassAccumulator (pass 1) + SecondPassAccumulator (pass 2) over the batches, then
     CDNV, NC1, NC2 and NCC accuracy;
   - naive: all features materialised as one (N, D) float64 tensor, dense D x D Sigma_W and
     Sigma_B, pinv(Sigma_B) by SVD (np.linalg.pinv's method, as in Papyan et al.'s reference code),
     the same four measures.
   Each case runs in its own subprocess, after a tiny warm-up run. Time: the measurement work
   only (feature generation is excluded for both), best of 5 runs for the engine and of 2 for the
   naive method (one at D = 16384); the minimum filters interference from other processes.
   Memory: peak resident set (VmHWM) minus the resident set after imports and setup, i.e. all the
   case held at its peak, including the batches it generated and the allocator's slack.
   Naive cases whose dense matrices cannot fit in this machine's memory are reported, not run.
2. Overhead of the engine's per-batch work on a forward pass of a CIFAR ResNet18 (width 64 unless
   --width) with all block taps, flat features, one batch of random CIFAR-shaped inputs: median
   update time over median forward_with_taps time, the two timed alternately.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

from ncutils import metrics
from ncutils.models import build_model, forward_with_taps
from ncutils.accumulators import BLOCK_ELEMENTS, ClassAccumulator, SecondPassAccumulator

K = 10
BATCH = 128
DIMS = (512, 4096, 16384, 65536)
REPEATS = {"engine": 5, "naive": 2}  # best of: the minimum filters interference from other processes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ncutils.bench metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true",
                        help="larger N, naive at more sizes (D = 16384 takes tens of minutes), more repeats")
    parser.add_argument("--width", type=int, default=None, help="ResNet18 base width (default 64)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--case", nargs=3, metavar=("METHOD", "D", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        method, dim, n = args.case
        print(json.dumps(_run_case(method, int(dim), int(n))))
        return
    sizes = (2048, 8192, 32768) if args.full else (1024, 4096)
    naive_runs = _naive_plan(sizes, args.full)
    print(f"# metrics engine vs naive: K = {K}, batches of {BATCH}, float32 features, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average at start {_load_average()}")
    print("# time: measurement work only (best of 5 engine runs, of 2 naive runs up to D = 4096); MiB: peak resident "
          "memory above the post-import baseline of the case's own process; max rel. diff: engine vs naive over CDNV, "
          "NC1, NC2, NCC accuracy")
    print(f"{'D':>6} {'N':>6} | {'engine s':>9} {'engine MiB':>10} | {'naive s':>9} {'naive MiB':>10} | "
          f"{'speed-up':>8} | max rel. diff")
    largest_naive = None  # (D, seconds) of the largest naive run, for the D^3 estimates
    for dim in DIMS:
        for n in sizes:
            engine = _subprocess_case("engine", dim, n, args.threads)
            naive = _subprocess_case("naive", dim, n, args.threads) if (dim, n) in naive_runs else None
            line = f"{dim:>6} {n:>6} | {engine['seconds']:>9.3f} {engine['peak_mib']:>10.0f} | "
            if naive is None:
                line += f"{'-':>9} {'-':>10} | {'-':>8} | " + _why_not_naive(dim, n, largest_naive, args.full)
            else:
                largest_naive = (dim, naive["seconds"])
                diff = max(abs(engine[k] - naive[k]) / max(abs(naive[k]), 1e-300)
                           for k in ("cdnv", "nc1", "nc2", "ncc"))
                line += (f"{naive['seconds']:>9.3f} {naive['peak_mib']:>10.0f} | "
                         f"{naive['seconds'] / engine['seconds']:>7.1f}x | {diff:.1e}")
            print(line, flush=True)
    print(f"# engine memory is bounded whatever N: the per-class statistics (K x D float64) plus one column block "
          f"({BLOCK_ELEMENTS['cpu'] * 8 / 2**20:.0f} MiB of float64 on CPU) and the float32 rows held to fill it; a "
          "case whose N x D is below one block holds all of it")
    _overhead(args.width or 64, repeats=7 if args.full else 4)
    print(f"# load average at end {_load_average()}")


def _naive_plan(sizes: tuple[int, ...], full: bool) -> set[tuple[int, int]]:
    """The (D, N) cases the naive method runs: D = 512 at every N; D = 4096 at the smallest N
    (at every N with --full); with --full also D = 16384 at the smallest N (tens of minutes)."""
    plan = {(DIMS[0], n) for n in sizes} | {(DIMS[1], sizes[0])}
    if full:
        plan |= {(DIMS[1], n) for n in sizes} | {(DIMS[2], sizes[0])}
    return plan


def _why_not_naive(dim: int, n: int, measured: tuple[int, float] | None, full: bool) -> str:
    """Why the naive case was not run: memory it cannot have, or time (estimated by D^3 scaling)."""
    need = (3 * dim * dim + n * dim) * 8 / 2**30
    available = _meminfo_gib("MemAvailable")
    if need > available:
        return f"naive cannot run: its D x D matrices need >= {need:.0f} GiB, {available:.0f} GiB available"
    estimate = "" if measured is None or measured[0] >= dim else \
        f", ~{measured[1] * (dim / measured[0]) ** 3 / 60:.0f} min by D^3 scaling of the D = {measured[0]} run"
    return f"naive not run{'' if full else ' by default (--full runs more)'}{estimate}"


def _subprocess_case(method: str, dim: int, n: int, threads: int | None) -> dict:
    command = [sys.executable, "-m", "ncutils.bench.metrics", "--case", method, str(dim), str(n)]
    out = subprocess.run(command + (["--threads", str(threads)] if threads else []),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_case(method: str, dim: int, n: int) -> dict:
    run = _engine if method == "engine" else _naive
    run(_FeatureSource(64, 256))  # warm-up: first calls load LAPACK and friends, a one-off per process
    source = _FeatureSource(dim, n)
    baseline = _status_kib("VmRSS")
    repeats = 1 if method == "naive" and dim > 4096 else REPEATS[method]  # a naive D = 16384 run takes long
    seconds, values = min((run(source) for _ in range(repeats)), key=lambda result: result[0])
    peak = _status_kib("VmHWM")
    return {"seconds": seconds, "peak_mib": (peak - baseline) / 1024, **values}


class _FeatureSource:
    """Seeded batches of (float32 features, labels): Gaussian classes around random means."""

    def __init__(self, dim: int, n: int):
        self.dim, self.n = dim, n
        self.means = torch.randn(K, dim, generator=torch.Generator().manual_seed(0)) * 0.5

    def batches(self):
        for index, start in enumerate(range(0, self.n, BATCH)):
            g = torch.Generator().manual_seed(index + 1)
            size = min(BATCH, self.n - start)
            y = torch.randint(0, K, (size,), generator=g)
            yield self.means[y] + torch.randn(size, self.dim, generator=g), y


def _engine(source: _FeatureSource) -> tuple[float, dict]:
    seconds, first = 0.0, ClassAccumulator(K)
    for h, y in source.batches():
        start = time.perf_counter()
        first.update(h, y)
        seconds += time.perf_counter() - start
    start = time.perf_counter()
    moments = first.moments()
    values = {"cdnv": metrics.cdnv_of(moments), "nc2": metrics.nc2_of(moments)}
    second = SecondPassAccumulator(moments, K)
    seconds += time.perf_counter() - start
    for h, y in source.batches():
        start = time.perf_counter()
        second.update(h, y, y)
        seconds += time.perf_counter() - start
    start = time.perf_counter()
    result = second.result()
    seconds += time.perf_counter() - start
    return seconds, {**values, "nc1": result["nc1"], "ncc": result["ncc_accuracy"]}


def _naive(source: _FeatureSource) -> tuple[float, dict]:
    batches = list(source.batches())
    start = time.perf_counter()
    h = torch.cat([b for b, _ in batches]).double()
    y = torch.cat([b for _, b in batches])
    del batches
    count = torch.bincount(y, minlength=K).double()
    means = torch.zeros(K, h.shape[1], dtype=torch.float64).index_add_(0, y, h) / count[:, None]
    deviations = h - means[y]
    sigma_w = deviations.T @ deviations / len(h)
    centred = means - h.mean(0)
    sigma_b = centred.T @ centred / K
    nc1 = float((sigma_w * torch.linalg.pinv(sigma_b)).sum() / K)  # Tr(A B), A, B symmetric; SVD pinv as np.linalg.pinv
    variances = torch.zeros(K, dtype=torch.float64).index_add_(0, y, deviations.square().sum(1)) / count
    distance_sq = torch.cdist(means, means).square()
    off = ~torch.eye(K, dtype=torch.bool)
    cdnv = float(((variances[:, None] + variances[None, :])[off] / (2 * distance_sq[off])).sum())
    gram = centred @ centred.T
    etf = (torch.eye(K, dtype=torch.float64) - 1 / K) / (K - 1) ** 0.5
    nc2 = float(torch.linalg.matrix_norm(gram / torch.linalg.matrix_norm(gram) - etf))
    ncc = float((torch.cdist(h, means).argmin(1) == y).double().mean())
    return time.perf_counter() - start, {"cdnv": cdnv, "nc1": nc1, "nc2": nc2, "ncc": ncc}


def _overhead(width: int, repeats: int) -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=K, width=width).eval()
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, K, (BATCH,))
    with torch.inference_mode():
        logits, taps = forward_with_taps(model, x)  # warm-up
        flat = {name: t.flatten(1) for name, t in taps.items()}
        first = {name: ClassAccumulator(K) for name in flat}
        for name, h in flat.items():
            first[name].update(h, y)
        start = time.perf_counter()
        second = {name: SecondPassAccumulator(acc.moments(), K) for name, acc in first.items()}
        setup = time.perf_counter() - start
        predictions = logits.argmax(1)
        forward, pass1, pass2 = [], [], []
        for _ in range(repeats):
            forward.append(_timed(lambda: forward_with_taps(model, x)))
            pass1.append(_timed(lambda: [first[name].update(h, y) for name, h in flat.items()]))
            pass2.append(_timed(lambda: [second[name].update(h, y, predictions) for name, h in flat.items()]))
    dims = sum(h.shape[1] for h in flat.values())
    f, p1, p2 = (sorted(v)[len(v) // 2] for v in (forward, pass1, pass2))
    print(f"\n# overhead on a forward pass: CIFAR ResNet18 width {width}, batch {BATCH}x3x32x32, "
          f"{len(flat)} taps (stem + 8 blocks), flat features ({dims:,} values per image), "
          f"one label grouping, median of {repeats}")
    print(f"forward_with_taps      {f:7.3f} s")
    print(f"pass-1 update, all taps {p1:7.3f} s  = {p1 / f:5.1%} of the forward")
    print(f"pass-2 update, all taps {p2:7.3f} s  = {p2 / f:5.1%} of the forward")
    print(f"end of pass 1 (class-mean SVDs for NC1, once per run): {setup:.3f} s")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _meminfo_gib(field: str) -> float:
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/meminfo")


if __name__ == "__main__":
    main()
