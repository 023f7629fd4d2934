"""The CPU line of the timing commands, from /proc/cpuinfo texts of real machine kinds."""

from export import machine

X86_VNNI = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx avx2 avx512f avx512_vnni amx_int8 amx_tile

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx avx2 avx512f avx512_vnni amx_int8 amx_tile
"""
X86_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx f16c avx2 fma
"""
ARM_PHONE = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
Hardware\t: Qualcomm Technologies, Inc SM8150
"""


def test_x86_with_vnni_and_amx_lists_both_best_first():
    name, flags = machine.parse_cpuinfo(X86_VNNI)
    assert name == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert machine.int8_dot_products(flags) == ["AMX-INT8", "AVX-512 VNNI"]
    assert machine.describe_cpu(X86_VNNI, "x86_64") == (
        "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (x86_64); int8 dot product: AMX-INT8, AVX-512 VNNI")


def test_x86_with_avx2_only_says_none_and_names_its_widest_vectors():
    assert machine.describe_cpu(X86_AVX2, "x86_64") == (
        "AMD EPYC (x86_64); int8 dot product: none (widest vectors: AVX2)")


def test_arm_reads_features_and_the_hardware_name():
    assert machine.describe_cpu(ARM_PHONE, "aarch64") == (
        "Qualcomm Technologies, Inc SM8150 (aarch64); int8 dot product: Arm dot product")


OLD_ANDROID = """Processor\t: AArch64 Processor rev 14 (aarch64)
processor\t: 0
Features\t: fp asimd asimddp i8mm
Hardware\t: Qualcomm Technologies, Inc SM8550
"""
MAINLINE_ARM64 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


def test_the_most_telling_name_field_wins_whatever_its_line():
    assert machine.describe_cpu(OLD_ANDROID, "aarch64") == (
        "Qualcomm Technologies, Inc SM8550 (aarch64); int8 dot product: Arm I8MM, Arm dot product")


def test_a_mainline_arm64_kernel_is_named_by_implementer_and_part():
    assert machine.describe_cpu(MAINLINE_ARM64, "aarch64") == (
        "Arm CPU implementer 0x41, part 0xd0c (aarch64); int8 dot product: none (widest vectors: Arm NEON)")


def test_without_cpuinfo_the_flags_are_unknown_not_absent():
    line = machine.describe_cpu("", "arm64")
    assert line.endswith("(arm64); int8 dot product: unknown (no /proc/cpuinfo flags)")


def test_this_machine_gets_one_line():
    line = machine.describe_cpu()
    assert "\n" not in line and "int8 dot product:" in line
