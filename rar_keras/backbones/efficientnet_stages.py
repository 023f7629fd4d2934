"""EfficientNet-Lite's stages up to stride 16, and the check of a shallower encoder's block counts.

Free of TensorFlow: `RARConfig` checks `encoder_repeats` with it before TensorFlow loads.
"""

from __future__ import annotations

from typing import Sequence

# The stages up to stride 16: (expansion, kernel, stride, channels, repeats). The stages after them
# (stride 32) and the 1280-channel head are left out. Lite2 scales Lite0's widths by 1.1 (rounded to
# multiples of 8) and the repeats of the inner stages by 1.2 (rounded up); both keep the stem and the
# first stage, so the stride-2 and stride-4 outputs have the same channels.
STAGES = {
    "lite0": ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3)),
    "lite2": ((1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 48, 3), (6, 3, 2, 88, 4), (6, 5, 1, 120, 4)),
}


def full_repeats(variant: str) -> tuple[int, ...]:
    """Blocks per stage of the variant's ImageNet encoder, e.g. (1, 2, 2, 3, 3) for "lite0"."""
    return tuple(stage[-1] for stage in STAGES[variant])


def check_repeats(variant: str, repeats: Sequence[int]) -> tuple[int, ...]:
    """`repeats` as a tuple, or the variant's full depth when it is empty.

    A shallower encoder keeps the first `repeats[i]` blocks of stage i and leaves out the rest
    (each left-out block is a residual one, so what remains still lines up with the ImageNet and
    the deeper model's weights).

    Raises:
        ValueError: not one count per stage, or a count outside 1..the variant's.
    """
    full = full_repeats(variant)
    if not isinstance(repeats, (list, tuple)):
        raise ValueError(f"encoder_repeats must be a list of {len(full)} block counts, got {repeats!r}")
    if not repeats:
        return full
    try:
        counts = tuple(int(r) for r in repeats)
    except (TypeError, ValueError):
        raise ValueError(f"encoder_repeats must be a list of {len(full)} block counts, got {repeats!r}") from None
    if len(counts) != len(full) or any(not 1 <= r <= f for r, f in zip(counts, full)) \
            or any(float(r) != c for r, c in zip(repeats, counts)):
        raise ValueError(f"encoder_repeats must give {len(full)} block counts, each from 1 to the "
                         f"{variant} encoder's {list(full)}, got {list(repeats)!r}")
    return counts
