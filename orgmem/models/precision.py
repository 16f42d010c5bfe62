"""Which dtype a frozen base runs in for *serving*, as opposed to training.

Training on this class of CPU is fastest in fp32 (bf16 matmuls with gradients are ~5x slower),
but decoding one token per step is a matrix-*vector* product bounded by reading the weights:
with bf16 weights a CPU that has native bf16 dot products (AVX512-BF16 or AMX) reads half the
bytes and decodes ~1.5x faster (measured: 57 ms -> 37 ms per SmolLM2 step, 2 threads). GPUs serve
in bf16 where supported, as they train. Org memories keep their fp32 weights either way.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from orgmem.errors import OrgmemError

SERVE_DTYPES = ("auto", "float32", "bfloat16")
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU advertises bf16 dot-product instructions (Linux ``/proc/cpuinfo`` flags)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(f in flags for f in _NATIVE_BF16_FLAGS)
    return False


def serving_dtype(spec: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on a GPU that supports it or a CPU with native bf16, else fp32."""
    if spec not in SERVE_DTYPES:
        raise OrgmemError(f"serving dtype {spec!r} is not one of {', '.join(SERVE_DTYPES)}")
    if spec == "float32":
        return torch.float32
    if spec == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else torch.float32
