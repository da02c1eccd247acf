"""``kernel.c``, compiled on first use and called through ctypes: the fast path of the population engine.

Per model and minibatch the work is small, so in torch it is mostly kernel launches; in C one
model's forward and backward pass run in L1. The kernel is built by the machine's C compiler
(``$CC``, default ``cc``; gcc or clang) for this CPU and cached under ``~/.cache/trainlab`` (or
``$TRAINLAB_CACHE``) by a hash of source, flags, compiler and CPU. Without it (no compiler, a compile
error) or with ``TRAINLAB_KERNEL=torch``, the engine runs ``net.py``'s batched torch code instead
(the same results to rounding, slower): ``kernel_status`` says which runs and why (``trainlab doctor
--system``), and the first population run that falls back says so on stderr.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from trainlab import rng
from trainlab.activations import ACTIVATIONS
from trainlab.population.net import Net

SOURCE = Path(__file__).with_name("kernel.c")
ACTIVATION_IDS = {name: i for i, name in enumerate(ACTIVATIONS)}  # kernel.c's enum lists them in this order
MAX_LAYERS = 16
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-shared", "-fPIC"]
C_REAL = {torch.float32: "float", torch.float64: "double"}
COMPILE_SECONDS = 300


class Layout(ctypes.Structure):
    """kernel.c's ``Layout``: layer sizes, where each layer's W and b sit in a row, and each hidden
    layer's activation and dropout."""

    _fields_ = [("n_layers", ctypes.c_int64), ("sizes", ctypes.c_int64 * (MAX_LAYERS + 1))] + [
        (name, ctypes.c_int64 * MAX_LAYERS) for name in ("w_at", "w_row", "w_col", "b_at", "b_step", "activation")] + [
        ("drop_below", ctypes.c_uint64 * MAX_LAYERS), ("keep_scale", ctypes.c_double * MAX_LAYERS)]


class AdamStep(ctypes.Structure):
    """kernel.c's ``Adam``: the Adam steps ``gradients`` takes after each model's gradient (filled in
    by population/optim.py's ``Adam.kernel_steps``)."""

    _fields_ = [("exp_avg", ctypes.c_void_p), ("exp_avg_sq", ctypes.c_void_p)] + [
        (name, ctypes.c_void_p) for name in ("lr", "beta1", "beta2", "eps", "weight_decay")] + [
        ("step", ctypes.c_int64), ("decoupled", ctypes.c_int64)]


def layout(net: Net) -> Layout:
    """``net``'s layout as kernel.c reads it: offsets and strides of each W and b in a row (off its
    views), and each hidden layer's activation and dropout."""
    out = Layout(n_layers=net.n_layers)
    out.sizes[: len(net.sizes)] = net.sizes
    for layer, (activation, rate) in enumerate(zip(net.activations, net.dropouts)):
        out.activation[layer] = ACTIVATION_IDS[activation]
        out.drop_below[layer] = rng.dropout_threshold(rate)
        out.keep_scale[layer] = 1 / (1 - rate)
    probe = torch.empty(1, net.n_params, dtype=net.dtype)
    for layer in range(net.n_layers):
        w, b = net.weight(probe, layer), net.bias(probe, layer)  # (1, out, in), (1, out, 1)
        out.w_at[layer], out.w_row[layer], out.w_col[layer] = w.storage_offset(), w.stride(1), w.stride(2)
        out.b_at[layer], out.b_step[layer] = b.storage_offset(), b.stride(1)
    return out


def cache_dir() -> Path:
    root = os.environ.get("TRAINLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "trainlab")
    return Path(root) / "kernels"


def _cpu() -> str:
    """What ``-march=native`` compiles for: a cached library must not meet another CPU."""
    try:
        return next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor() + platform.machine()


# A compiler's version in its predefined macros (clang defines gcc's too, as gcc 4.2: it comes first).
VERSION_MACROS = {"clang": ("__clang_major__", "__clang_minor__", "__clang_patchlevel__"),
                  "gcc": ("__GNUC__", "__GNUC_MINOR__", "__GNUC_PATCHLEVEL__")}


def _identify(compiler: list[str]) -> tuple[str, str]:
    """The C compiler's name and version ("gcc 12.2.0", "clang 14.0.6"), and all its predefined
    macros (which change with its version and target)."""
    done = subprocess.run([*compiler, "-E", "-dM", "-x", "c", os.devnull], capture_output=True, text=True,
                          timeout=60, check=True)
    macros = dict(line.split(" ", 2)[1:] for line in done.stdout.splitlines() if line.count(" ") >= 2)
    for name, parts in VERSION_MACROS.items():
        if all(part in macros for part in parts):
            return f"{name} {'.'.join(macros[part] for part in parts)}", done.stdout
    return " ".join(compiler), done.stdout


def _compile(compiler: list[str], real: str, target: Path) -> str | None:
    """Build the library for ``real`` at ``target``; the compiler's first complaint if it cannot."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        cmd = [*compiler, *FLAGS, f"-DREAL={real}", str(SOURCE), "-o", str(built), "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_SECONDS)
        if done.returncode == 0:
            os.replace(built, target)  # atomic: a concurrent build writes the same bytes
            return None
    return next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200])


@functools.cache
def _build(dtype: torch.dtype, cc: str) -> tuple[ctypes.CDLL | None, str]:
    """The kernel for ``dtype`` compiled by ``cc`` (a command: "gcc", "ccache clang"), built if
    needed, and what the engine runs: "C kernel, built with ..." or "torch fallback: why"."""
    if dtype not in C_REAL:
        return None, f"torch fallback: the C kernel has no {dtype}"
    if sys.platform == "win32":
        return None, "torch fallback: the C kernel is not built on Windows"
    compiler = shlex.split(cc)
    if not compiler or shutil.which(compiler[0]) is None:
        return None, f"torch fallback: no C compiler found ({cc!r}; install gcc or clang, or set CC)"
    real = C_REAL[dtype]
    try:
        name, macros = _identify(compiler)
        key = hashlib.sha256("\0".join([SOURCE.read_text(), real, *FLAGS, macros, _cpu()]).encode()).hexdigest()[:16]
        target = cache_dir() / f"kernel-{real}-{key}.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            complaint = _compile(compiler, real, target)
            if complaint is not None:
                return None, f"torch fallback: the C kernel did not compile with {name} ({cc}): {complaint}"
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"torch fallback: the C kernel could not be built with {cc}: {e}"
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.work_size.restype, lib.work_size.argtypes = i64, [ctypes.POINTER(Layout)]
    lib.gradients.restype = lib.evaluate.restype = lib.permutations.restype = None
    lib.gradients.argtypes = [ctypes.POINTER(Layout), i64, ptr, i64, ptr, i64, ptr, i64, i64, i64, ptr, ptr, ptr, ptr, i64,
                              i64, ctypes.POINTER(AdamStep)]
    lib.evaluate.argtypes = [ctypes.POINTER(Layout), i64, ptr, i64, ptr, ptr, i64, ptr, i64, ptr, i64, ptr]
    lib.permutations.argtypes = [ptr, i64, i64, i64, ptr]
    return lib, f"C kernel, built with {name} ({str(dtype).removeprefix('torch.')})"


def kernel_status(dtype: torch.dtype) -> str:
    """Which code the population engine trains ``dtype`` models with, and why (``trainlab doctor --system``)."""
    if os.environ.get("TRAINLAB_KERNEL", "c") == "torch":
        return "torch fallback: TRAINLAB_KERNEL=torch"
    return _build(dtype, os.environ.get("CC", "cc"))[1]


def library(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The compiled kernel for ``dtype`` (built by ``$CC``, default ``cc``), or None where it cannot be built."""
    return _build(dtype, os.environ.get("CC", "cc"))[0]


def c_array(t: Tensor, dtype: torch.dtype, shape: tuple | None = None) -> int:
    """The address of ``t``'s data, which kernel.c reads as a dense array of ``dtype`` (a real check:
    a wrong stride or dtype would have it read past the end)."""
    if not t.is_contiguous() or t.dtype != dtype or (shape is not None and tuple(t.shape) != tuple(shape)):
        raise ValueError(f"kernel.c needs a contiguous {dtype} tensor{'' if shape is None else f' of shape {tuple(shape)}'}, "
                         f"got {t.dtype} {tuple(t.shape)} strides {t.stride()}")
    return t.data_ptr()


class CompiledNet:
    """``Net.gradients`` and ``Net.evaluate`` for every model of a slice, in C."""

    def __init__(self, net: Net, lib: ctypes.CDLL):
        self.net, self.lib = net, lib
        self.layout = layout(net)
        self.work = torch.empty(lib.work_size(ctypes.byref(self.layout)), dtype=net.dtype)
        self.split_sizes: dict[tuple[int, ...], Tensor] = {}

    def gradients(self, params: Tensor, table: Tensor, rows: Tensor | None, m: int, out: Tensor,
                  seeds: Tensor | None = None, epoch: int = 0, step: int = 0, norms: Tensor | None = None,
                  adam: AdamStep | None = None) -> None:
        """Each model's gradient of its mean cross-entropy on its minibatch, into ``out``: the table
        rows ``rows[s, :m]`` (unit stride along a row; None: the first ``m``), minibatch ``step`` of
        ``epoch`` (its dropout masks drawn from ``seeds``). Its norm goes to ``norms`` if given:
        written at step 0, added at later steps. With ``adam``, ``rows`` may hold several minibatches,
        ``m`` at a time, each followed by its Adam step; ``out`` keeps the last gradients."""
        k, p = params.shape
        dtype = self.net.dtype
        row_ptr, row_stride, n = None, 0, m
        if rows is not None:
            n = rows.shape[1] if adam is not None else m
            if rows.dtype != torch.int64 or rows.stride(1) != 1 or rows.shape != (k, n):
                raise ValueError(f"rows: expected ({k}, {n}) int64 with unit stride along a row, got {rows.dtype} "
                                 f"{tuple(rows.shape)} strides {rows.stride()}")
            row_ptr, row_stride = rows.data_ptr(), rows.stride(0)
        if seeds is None and any(self.net.dropouts):
            raise ValueError("dropout draws its masks from each model's seed: pass seeds")
        self.lib.gradients(ctypes.byref(self.layout), k, c_array(params, dtype), p, c_array(table, dtype),
                           table.shape[1], row_ptr, row_stride, n, m, c_array(out, dtype, params.shape),
                           None if norms is None else c_array(norms, dtype, (k,)), self.work.data_ptr(),
                           None if seeds is None else c_array(seeds, torch.int64, (k,)), epoch, step,
                           None if adam is None else ctypes.byref(adam))

    def evaluate(self, params: Tensor, xa: Tensor, y: Tensor, splits: list[int], out: Tensor | None = None
                 ) -> list[tuple[Tensor, Tensor]]:
        """``Net.evaluate``: mean cross-entropy and accuracy (float64, one per model) on consecutive
        column ranges ``splits`` of ``xa`` (in + 1, N), labels ``y``; into ``out`` if given."""
        k, p = params.shape
        if sum(splits) != xa.shape[1] or y.shape != (xa.shape[1],):
            raise ValueError(f"splits {splits} and labels {tuple(y.shape)} must cover the {xa.shape[1]} columns")
        n = len(splits)
        if out is None:
            out = torch.empty(k, 2 * n, dtype=torch.float64)
        elif out.dtype != torch.float64 or out.shape != (k, 2 * n) or out.stride(1) != 1:
            raise ValueError(f"out: expected ({k}, {2 * n}) float64 with unit stride along a row, got {out.dtype} "
                             f"{tuple(out.shape)} strides {out.stride()}")
        sizes = self.split_sizes.get(tuple(splits))
        if sizes is None:
            sizes = self.split_sizes[tuple(splits)] = torch.tensor(splits, dtype=torch.int64)
        self.lib.evaluate(ctypes.byref(self.layout), k, c_array(params, self.net.dtype), p,
                          c_array(xa, self.net.dtype), c_array(y, torch.int64),
                          xa.shape[1], sizes.data_ptr(), n, out.data_ptr(), out.stride(0), self.work.data_ptr())
        return [(out[:, j], out[:, n + j]) for j in range(n)]


class DataOrders:
    """Each model's data order for an epoch, ``rng.permutation`` of its seed: one kernel call for all
    models, else ``rng.permutations``."""

    def __init__(self, seeds: list[int], n: int, lib: ctypes.CDLL | None):
        self.seeds, self.n, self.lib = torch.tensor(seeds, dtype=torch.int64), n, lib

    def draw(self, epoch: int, out: Tensor) -> None:
        """Each model's order for ``epoch`` into the rows of ``out``."""
        if self.lib is None:
            out.copy_(torch.from_numpy(rng.permutations(self.seeds.tolist(), epoch, self.n)))
            return
        self.lib.permutations(self.seeds.data_ptr(), len(self.seeds), epoch, self.n,
                              c_array(out, torch.int64, (len(self.seeds), self.n)))

    def keep(self, rows: Tensor) -> None:
        self.seeds = self.seeds[rows]


_fallback_said = False


def compiled(net: Net) -> CompiledNet | None:
    """The C path for ``net``, or None (no kernel built, TRAINLAB_KERNEL=torch, too deep a net). The
    first time in a process the kernel is missing, one line on stderr says so and why."""
    global _fallback_said
    if (os.environ.get("TRAINLAB_KERNEL", "c") == "torch" or net.n_layers > MAX_LAYERS
            or any(a not in ACTIVATIONS for a in net.activations)):
        return None
    lib = library(net.dtype)
    if lib is None and not _fallback_said:
        _fallback_said = True
        print(f"trainlab: training with the population engine's torch code, ~3× slower than its C kernel "
              f"({kernel_status(net.dtype)}; see `trainlab doctor --system`)", file=sys.stderr)
    return None if lib is None else CompiledNet(net, lib)
