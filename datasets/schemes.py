"""Landmark schemes: named indices and horizontal-flip permutations per benchmark.

Left and right are the image's left and right (the subject's right eye is on
the image's left), so normalisers and flips never depend on who is looking.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from datasets.errors import DataError


@dataclasses.dataclass(frozen=True)
class LandmarkScheme:
    """Names the landmarks of one annotation scheme.

    Args:
        name: short identifier used in configs and model files, e.g. "300w68".
        num_points: number of landmarks L.
        left_eye: indices whose mean is the image-left eye centre (pupil).
        right_eye: indices whose mean is the image-right eye centre (pupil).
        left_eye_outer: index of the image-left outer eye corner.
        right_eye_outer: index of the image-right outer eye corner.
        flip_pairs: index pairs that swap under a horizontal flip; every other
            point maps to itself.
        contours: index runs drawn as polylines on overlays.

    Example:
        >>> flipped = landmarks[W300.flip_permutation]
    """

    name: str
    num_points: int
    left_eye: tuple[int, ...]
    right_eye: tuple[int, ...]
    left_eye_outer: int
    right_eye_outer: int
    flip_pairs: tuple[tuple[int, int], ...]
    contours: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self):
        seen = [i for pair in self.flip_pairs for i in pair]
        if len(seen) != len(set(seen)) or any(not 0 <= i < self.num_points for i in seen):
            raise ValueError(f"scheme {self.name}: flip pairs must be distinct indices in [0, {self.num_points})")

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array p such that `flipped_landmarks = mirrored[p]`."""
        perm = np.arange(self.num_points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def mirror_landmarks(self, points, width: float) -> np.ndarray:
        """Landmarks (..., L, 2) of an image mirrored left-right, `width` pixels wide: x -> width - 1 - x
        (pixel centres on integers), left and right landmarks swapped by `flip_permutation`."""
        mirrored = np.asarray(points, np.float32)[..., self.flip_permutation, :].copy()
        mirrored[..., 0] = (width - 1) - mirrored[..., 0]
        return mirrored

    @property
    def pupils(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Index groups of the two eye centres (inter-pupil normaliser)."""
        return (self.left_eye, self.right_eye)

    @property
    def outer_eyes(self) -> tuple[tuple[int], tuple[int]]:
        """The two outer eye corners (inter-ocular normaliser)."""
        return ((self.left_eye_outer,), (self.right_eye_outer,))

    def check(self, landmarks: np.ndarray, source: str) -> np.ndarray:
        """Returns landmarks as float32 (L, 2) or raises naming `source`."""
        arr = np.asarray(landmarks, dtype=np.float32)
        if arr.shape != (self.num_points, 2):
            raise DataError(f"{source}: expected {self.num_points} landmarks of scheme {self.name} "
                            f"as ({self.num_points}, 2), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise DataError(f"{source}: landmarks contain NaN or infinite coordinates")
        return arr


def _mirror_pairs(left: range, right: range) -> tuple[tuple[int, int], ...]:
    return tuple(zip(left, reversed(right)))


W300 = LandmarkScheme(
    name="300w68",
    num_points=68,
    left_eye=(36, 37, 38, 39, 40, 41),
    right_eye=(42, 43, 44, 45, 46, 47),
    left_eye_outer=36,
    right_eye_outer=45,
    flip_pairs=(
        _mirror_pairs(range(0, 8), range(9, 17))          # jaw
        + _mirror_pairs(range(17, 22), range(22, 27))     # brows
        + ((31, 35), (32, 34))                            # nostrils
        + ((36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46))  # eyes
        + ((48, 54), (49, 53), (50, 52), (55, 59), (56, 58))            # outer lips
        + ((60, 64), (61, 63), (65, 67))                                # inner lips
    ),
    contours=(tuple(range(0, 17)), tuple(range(17, 22)), tuple(range(22, 27)), tuple(range(27, 31)),
              tuple(range(31, 36)), tuple(range(36, 42)) + (36,), tuple(range(42, 48)) + (42,),
              tuple(range(48, 60)) + (48,), tuple(range(60, 68)) + (60,)),
)

COFW29 = LandmarkScheme(
    name="cofw29",
    num_points=29,
    left_eye=(16,),
    right_eye=(17,),
    left_eye_outer=8,
    right_eye_outer=9,
    flip_pairs=((0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),
                (18, 19), (22, 23)),
)

AFLW19 = LandmarkScheme(
    name="aflw19",
    num_points=19,
    left_eye=(7,),
    right_eye=(10,),
    left_eye_outer=6,
    right_eye_outer=11,
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)),
)

WFLW98 = LandmarkScheme(
    name="wflw98",
    num_points=98,
    left_eye=(96,),
    right_eye=(97,),
    left_eye_outer=60,
    right_eye_outer=72,
    flip_pairs=(
        _mirror_pairs(range(0, 16), range(17, 33))                                   # jaw
        + ((33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47))
        + ((55, 59), (56, 58))                                                       # nostrils
        + ((60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73))
        + ((76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95))
        + ((96, 97),)
    ),
    contours=(tuple(range(0, 33)), tuple(range(33, 42)) + (33,), tuple(range(42, 51)) + (42,),
              tuple(range(51, 55)), tuple(range(55, 60)), tuple(range(60, 68)) + (60,),
              tuple(range(68, 76)) + (68,), tuple(range(76, 88)) + (76,), tuple(range(88, 96)) + (88,)),
)

SCHEMES = {scheme.name: scheme for scheme in (W300, COFW29, AFLW19, WFLW98)}


def get_scheme(name: str) -> LandmarkScheme:
    """Looks a scheme up by name, with a clear error listing the known ones."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown landmark scheme {name!r}; known: {sorted(SCHEMES)}") from None


def scheme_for_count(num_points: int) -> LandmarkScheme:
    """The scheme with `num_points` landmarks (each known scheme has its own count)."""
    for scheme in SCHEMES.values():
        if scheme.num_points == num_points:
            return scheme
    raise ValueError(f"no landmark scheme has {num_points} points; known: "
                     f"{ {s.name: s.num_points for s in SCHEMES.values()} }")
