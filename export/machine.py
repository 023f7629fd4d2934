"""What CPU a timing ran on: its name and which int8 dot-product instructions it has.

An int8 LiteRT file's speed against a float one depends on these instructions: XNNPACK's int8
convolutions are fastest with AVX-512 VNNI / AVX-VNNI / AMX on x86 and with the dot-product
extension (`asimddp`, `i8mm`) on Arm phones. Without them (x86 with AVX2 only) an int8 file can
run slower than its fp16 twin, so every timing table says which CPU it came from.
"""

from __future__ import annotations

import pathlib
import platform
from typing import Optional

# /proc/cpuinfo flags of int8 dot-product instructions, best first.
INT8_DOT_FLAGS = {
    "amx_int8": "AMX-INT8",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "i8mm": "Arm I8MM",
    "asimddp": "Arm dot product",
}
# Wider vector units named when a CPU has none of the above.
VECTOR_FLAGS = {"avx512f": "AVX-512", "avx2": "AVX2", "avx": "AVX", "sse4_2": "SSE4.2", "asimd": "Arm NEON",
                "neon": "Arm NEON"}
# /proc/cpuinfo fields that name the CPU, most telling first (x86; Android's SoC; older Arm kernels;
# MIPS); mainline Arm64 kernels have none, only the implementer and part numbers.
NAME_FIELDS = ("model name", "Hardware", "Processor", "cpu model")


def parse_cpuinfo(text: str) -> tuple[Optional[str], set[str]]:
    """(the CPU's name or None, the set of its flags) from the text of Linux's /proc/cpuinfo.

    Args:
        text: the file's content: "key : value" lines, one block per logical CPU (x86 lists the
            extensions under "flags", Arm under "Features").
    """
    fields, flags = {}, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("flags", "Features"):
            flags.update(value.split())
        elif value:
            fields.setdefault(key, value)
    name = next((fields[key] for key in NAME_FIELDS if key in fields), None)
    if name is None and "CPU implementer" in fields:
        name = f"Arm CPU implementer {fields['CPU implementer']}, part {fields.get('CPU part', '?')}"
    return name, flags


def int8_dot_products(flags: set[str]) -> list[str]:
    """The int8 dot-product instructions among `flags`, by their usual names, best first."""
    return [label for flag, label in INT8_DOT_FLAGS.items() if flag in flags]


def describe_cpu(cpuinfo_text: Optional[str] = None, machine: Optional[str] = None) -> str:
    """One line naming the CPU and its int8 dot-product instructions, e.g.
    "AMD EPYC (x86_64); int8 dot product: none (widest vectors: AVX2)".

    Args:
        cpuinfo_text: /proc/cpuinfo's content; read from the machine when None (empty where the
            file cannot be read, e.g. on macOS or Windows: the flags are then unknown).
        machine: the architecture (`platform.machine()` when None).
    """
    if cpuinfo_text is None:
        try:
            cpuinfo_text = pathlib.Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo_text = ""
    machine = machine or platform.machine() or "unknown architecture"
    name, flags = parse_cpuinfo(cpuinfo_text)
    name = name or platform.processor() or "unknown CPU"
    if not flags:
        return f"{name} ({machine}); int8 dot product: unknown (no /proc/cpuinfo flags)"
    dots = int8_dot_products(flags)
    if dots:
        return f"{name} ({machine}); int8 dot product: {', '.join(dots)}"
    widest = next((label for flag, label in VECTOR_FLAGS.items() if flag in flags), "none listed")
    return f"{name} ({machine}); int8 dot product: none (widest vectors: {widest})"
