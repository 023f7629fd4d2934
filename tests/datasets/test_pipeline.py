"""The input pipeline: crop geometry, augmentation that keeps pixels and landmarks together,
occlusion flags, determinism, and eval crops that map back to the image."""

import dataclasses

import numpy as np
import pytest

from datasets.augment_config import NO_AUGMENT, AugmentConfig
from datasets.crops import crop_face
from datasets.errors import DataError
from datasets.geometry import apply_affine, crop_matrix, resize_points
from datasets.pipeline import cache_faces, eval_dataset, train_dataset
from datasets.record import FaceRecord, landmark_box
from datasets.schemes import LandmarkScheme

# A toy face: two eyes, two mouth corners (flip pairs), a nose and a chin.
TOY = LandmarkScheme(name="toy6", num_points=6, left_eye=(0,), right_eye=(1,), left_eye_outer=0,
                     right_eye_outer=1, flip_pairs=((0, 1), (2, 3)))
TOY_POINTS = np.array([[50, 60], [110, 60], [60, 110], [100, 110], [80, 85], [80, 130]], np.float32)
# One distinct colour per landmark, so labels can be told apart after a flip.
TOY_COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]],
                       np.float32)
IMAGE_SIDE = 160
DOT_SIGMA = 2.5
SIZE = 64
GEOMETRY_ONLY = dataclasses.replace(NO_AUGMENT, rotation=30.0, scale=(0.85, 1.15), shift=0.08, flip_prob=0.5)
# How far a dot's centroid may lie from where the landmark says it is (crop pixels): measured
# 0.04 at most, so a half-pixel convention slip fails.
DOT_TOLERANCE = 0.3
DOT_WINDOW = 5
# Face boxes a bit wider than the landmarks, so augmented dots stay inside the crop.
BOX_PAD = 15.0


def dot_image(points=TOY_POINTS, colours=TOY_COLOURS, side=IMAGE_SIDE, sigma=DOT_SIGMA) -> np.ndarray:
    """Black image with a coloured Gaussian dot centred exactly on each landmark."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    image = np.zeros((side, side, 3), np.float32)
    for (x, y), colour in zip(points, colours):
        blob = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
        image = np.maximum(image, blob[..., None] * colour)
    return np.round(image).astype(np.uint8)


def toy_record(image=None, visibility=None, path="toy.png") -> FaceRecord:
    image = dot_image() if image is None else image
    box = landmark_box(TOY_POINTS) + np.array([-BOX_PAD, -BOX_PAD, BOX_PAD, BOX_PAD], np.float32)
    return FaceRecord(image, TOY_POINTS.copy(), box, path, visibility=visibility,
                      scheme=TOY.name)


def noise_records(count: int, seed: int = 0) -> list[FaceRecord]:
    rng = np.random.default_rng(seed)
    return [toy_record(rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8), path=f"noise{i}.png")
            for i in range(count)]


def first_batches(dataset, count: int):
    return [(images.numpy(), {k: v.numpy() for k, v in targets.items()}) for images, targets in
            dataset.take(count)]


def dot_centroid(image: np.ndarray, point: np.ndarray):
    """Intensity centroid of the dot near `point`, or None when the window leaves the image."""
    cx, cy = int(round(point[0])), int(round(point[1]))
    if not (DOT_WINDOW <= cx < image.shape[1] - DOT_WINDOW and DOT_WINDOW <= cy < image.shape[0] - DOT_WINDOW):
        return None
    window = image[cy - DOT_WINDOW:cy + DOT_WINDOW + 1, cx - DOT_WINDOW:cx + DOT_WINDOW + 1].sum(-1)
    ys, xs = np.mgrid[-DOT_WINDOW:DOT_WINDOW + 1, -DOT_WINDOW:DOT_WINDOW + 1]
    total = window.sum()
    return np.array([cx + (xs * window).sum() / total, cy + (ys * window).sum() / total])


# === crop_face ===

def test_crop_face_matrix_agrees_with_apply_affine():
    record = toy_record()
    crop, matrix = crop_face(record.image, record.box, SIZE)
    np.testing.assert_allclose(matrix, crop_matrix(record.box, SIZE))
    assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8
    for point in apply_affine(record.landmarks, matrix):
        np.testing.assert_allclose(dot_centroid(crop, point), point, atol=0.3)


def test_crop_face_preshrink_keeps_matrix_exact():
    # A big face shrunk about 12x: the crop goes through the INTER_AREA pre-shrink.
    scale = 8.0
    points = TOY_POINTS * scale
    image = dot_image(points, side=int(IMAGE_SIDE * scale), sigma=DOT_SIGMA * scale * 0.6)
    box = landmark_box(points)
    crop, matrix = crop_face(image, box, SIZE)
    np.testing.assert_allclose(matrix, crop_matrix(box, SIZE))
    for point in apply_affine(points, matrix):
        np.testing.assert_allclose(dot_centroid(crop, point), point, atol=0.3)


def test_crop_face_rejects_bad_box():
    with pytest.raises(DataError, match="zero or negative size"):
        crop_face(dot_image(), [10, 10, 5, 20], SIZE)


# === cache and train_dataset ===

def test_cache_faces_rejects_empty_list():
    with pytest.raises(DataError, match="no faces to cache"):
        cache_faces([], SIZE)


def test_same_seed_same_batches_and_epochs_differ():
    cache = cache_faces(noise_records(8), SIZE, progress=False)
    batches = first_batches(train_dataset(cache, TOY, SIZE, 4, seed=7), 4)
    again = first_batches(train_dataset(cache, TOY, SIZE, 4, seed=7), 4)
    other = first_batches(train_dataset(cache, TOY, SIZE, 4, seed=8), 4)
    for (images, targets), (images2, targets2) in zip(batches, again):
        np.testing.assert_array_equal(images, images2)
        np.testing.assert_array_equal(targets["landmarks"], targets2["landmarks"])
        np.testing.assert_array_equal(targets["visibility"], targets2["visibility"])
    assert not np.array_equal(batches[0][0], other[0][0])
    # 8 faces in batches of 4: batches 2 and 3 are the second epoch, reshuffled and re-augmented.
    assert not np.array_equal(batches[0][0], batches[2][0])
    images, targets = batches[0]
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 255.0
    assert targets["landmarks"].shape == (4, 6, 2) and targets["visibility"].shape == (4, 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augmented_dots_sit_on_augmented_landmarks(seed):
    """THE geometry test: after rotation, zoom, shift and flip, each landmark still sits on its dot."""
    cache = cache_faces([toy_record() for _ in range(16)], SIZE, progress=False)
    (images, targets), = first_batches(train_dataset(cache, TOY, SIZE, 16, seed=seed, augment=GEOMETRY_ONLY), 1)
    flips = 0
    for image, points in zip(images, targets["landmarks"]):
        checked = 0
        colours_identity, colours_flipped = [], []
        for index, point in enumerate(points):
            centroid = dot_centroid(image, point)
            if centroid is None:
                continue
            checked += 1
            np.testing.assert_allclose(centroid, point, atol=DOT_TOLERANCE)
            colour = image[int(round(point[1])), int(round(point[0]))]
            colours_identity.append(np.abs(colour - TOY_COLOURS[index]).max() < 80)
            colours_flipped.append(np.abs(colour - TOY_COLOURS[TOY.flip_permutation[index]]).max() < 80)
        assert checked >= 4
        # The labels follow the face: either none or all of them were swapped by a flip ...
        assert all(colours_identity) or all(colours_flipped)
        flips += not all(colours_identity)
        # ... and the image-left eye stays on the image left.
        assert points[0, 0] < points[1, 0] and points[2, 0] < points[3, 0]
    assert 0 < flips < len(images)


def test_occluder_flags_the_landmarks_it_covers():
    records = noise_records(16)
    records[0] = toy_record(records[0].image, visibility=np.array([0, 1, 1, 1, 1, 1], np.float32))
    cache = cache_faces(records, SIZE, progress=False)
    occluding = AugmentConfig(occluder_prob=1.0)
    clear = dataclasses.replace(occluding, occluder_prob=0.0)
    hidden_count = 0
    for seed in range(3):
        (images, targets), = first_batches(train_dataset(cache, TOY, SIZE, 16, seed, occluding, shuffle=False), 1)
        (plain, plain_targets), = first_batches(train_dataset(cache, TOY, SIZE, 16, seed, clear, shuffle=False), 1)
        np.testing.assert_array_equal(targets["landmarks"], plain_targets["landmarks"])
        painted = np.abs(images - plain).max(-1) > 0.5
        assert painted.any(axis=(1, 2)).all()
        for mask, points, flags, plain_flags in zip(painted, targets["landmarks"], targets["visibility"],
                                                    plain_targets["visibility"]):
            assert np.all(flags <= plain_flags)
            for point, flag, was in zip(points, flags, plain_flags):
                x, y = int(round(point[0])), int(round(point[1]))
                if not (1 <= x < SIZE - 1 and 1 <= y < SIZE - 1) or was == 0:
                    continue
                around = mask[y - 1:y + 2, x - 1:x + 2]
                if around.all():
                    assert flag == 0
                    hidden_count += 1
                elif not around.any():
                    assert flag == 1
        assert (targets["visibility"][:, 0] == 0).sum() >= 1  # the given occlusion flag survives
    assert hidden_count > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_rendered_crops_carry_the_same_augmentation_at_a_finer_scale(seed):
    """`render_size`: the crop is made at the finer side, the model's crop is it shrunk, and both
    show the same augmented face as the stream without rendering (same draws, same geometry)."""
    render = 2 * SIZE
    records = [toy_record() for _ in range(8)]
    fine = cache_faces(records, render, progress=False)
    plain = cache_faces(records, SIZE, progress=False)
    (images, targets), = first_batches(train_dataset(fine, TOY, SIZE, 8, seed, GEOMETRY_ONLY, render_size=render), 1)
    (_, plain_targets), = first_batches(train_dataset(plain, TOY, SIZE, 8, seed, GEOMETRY_ONLY), 1)
    rendered = targets["rendered"]
    assert images.shape == (8, SIZE, SIZE, 3) and rendered.shape == (8, render, render, 3)
    np.testing.assert_allclose(targets["landmarks"], plain_targets["landmarks"], atol=2e-3)
    np.testing.assert_array_equal(targets["visibility"], plain_targets["visibility"])
    fine_points = resize_points(targets["landmarks"], SIZE, render)
    checked = 0
    for image, points in zip(rendered, fine_points):
        for point in points:
            centroid = dot_centroid(image, point)
            if centroid is not None:
                np.testing.assert_allclose(centroid, point, atol=DOT_TOLERANCE)
                checked += 1
    assert checked >= 4 * len(rendered)
    # The model's crop is the rendered one shrunk: its dots sit on its landmarks too.
    checked = 0
    for image, points in zip(images, targets["landmarks"]):
        for point in points:
            centroid = dot_centroid(image, point)
            if centroid is not None:
                np.testing.assert_allclose(centroid, point, atol=2 * DOT_TOLERANCE)
                checked += 1
    assert checked >= 4 * len(images)


def test_rendering_from_a_coarser_cache_is_refused():
    cache = cache_faces(noise_records(4), SIZE, progress=False)
    with pytest.raises(DataError, match="cache was built for 64 px crops; render_size 128 needs"):
        train_dataset(cache, TOY, SIZE, 2, seed=0, render_size=2 * SIZE)


def test_render_size_below_the_crop_size_is_refused():
    cache = cache_faces(noise_records(4), SIZE, progress=False)
    with pytest.raises(DataError, match="render_size must be at least the crop size 64, got 32"):
        train_dataset(cache, TOY, SIZE, 2, seed=0, render_size=SIZE // 2)


# === eval_dataset ===

def test_eval_crop_then_inverse_is_identity():
    records = noise_records(5)
    for i, record in enumerate(records):  # different faces, boxes and positions
        shift = np.array([i * 3.7, -i * 2.1], np.float32)
        records[i] = FaceRecord(record.image, record.landmarks + shift, landmark_box(record.landmarks + shift),
                                record.path)
    cache = cache_faces(records, SIZE, progress=False)
    batches = list(eval_dataset(cache, SIZE, batch_size=2))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    landmarks = np.concatenate([b[1].numpy() for b in batches])
    matrices = np.concatenate([b[2].numpy() for b in batches])
    back = np.stack([apply_affine(p, m) for p, m in zip(landmarks, matrices)])
    np.testing.assert_allclose(back, np.stack([r.landmarks for r in records]), atol=1e-3)
    from_cache = np.concatenate([b[0].numpy() for b in eval_dataset(cache, SIZE, 8)])
    direct = np.stack([crop_face(r.image, r.box, SIZE)[0] for r in records]).astype(np.float32)
    assert np.abs(from_cache - direct).max() <= 1.0


def test_real_faces_cache_and_batch(shared_data):
    from datasets.schemes import W300

    w300 = pytest.importorskip("datasets.w300")
    records = w300.load_folder(shared_data / "300w" / "afw")[:8]
    cache = cache_faces(records, SIZE, progress=False)
    (images, targets), = first_batches(train_dataset(cache, W300, SIZE, 8, seed=0), 1)
    inside = (targets["landmarks"] >= 0) & (targets["landmarks"] <= SIZE - 1)
    assert inside.all(-1).mean() > 0.9


def test_a_mirrored_dot_sits_on_its_mirrored_point_to_a_twentieth_of_a_pixel():
    """The flip maps pixels and points by the same x -> S - 1 - x: a model trained on mirrored crops
    learns no offset from the pipeline (docs/LANDMARK_OFFSET.md)."""
    import tensorflow as tf

    from datasets import augment as aug

    point = np.array([30.3, 41.6])
    ys, xs = np.mgrid[:SIZE, :SIZE]
    dot = np.exp(-((xs - point[0]) ** 2 + (ys - point[1]) ** 2) / (2 * 1.5 ** 2)) * 255.0
    image = np.repeat(dot[None, ..., None], 3, -1).astype(np.float32)
    flip_only = AugmentConfig(rotation=0.0, scale=(1.0, 1.0), shift=0.0, flip_prob=1.0)
    matrix, flip = aug.random_affine(tf.constant([3, 4], tf.int64), 1, SIZE, flip_only)
    warped = aug.warp_batch(tf.constant(image), matrix, SIZE).numpy()[0, ..., 0]
    moved = aug.transform_points(tf.constant(point[None, None], tf.float32), matrix).numpy()[0, 0]
    assert bool(flip.numpy()[0])
    np.testing.assert_allclose(moved, [SIZE - 1 - point[0], point[1]], atol=1e-4)
    weights = warped / warped.sum()
    np.testing.assert_allclose([(weights * xs).sum(), (weights * ys).sum()], moved, atol=0.05)
