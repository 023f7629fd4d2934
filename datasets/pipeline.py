"""The tf.data input pipeline: faces cropped once into memory, augmented per batch in TF.

`cache_faces` cuts each face once, at a wider context than the model crop, into
one uint8 array; `train_dataset` draws batches from it with one random affine
per face (a single bilinear warp), colour jitter and synthetic occluders;
`eval_dataset` gives plain model crops with the matrices back to the image.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from datasets import augment as aug
from datasets.augment_config import AugmentConfig
from datasets.crops import chain_affine, crop_face
from datasets.errors import DataError
from datasets.geometry import DEFAULT_MARGIN, apply_affine, crop_matrix, invert_affine, resize_points
from datasets.record import FaceRecord
from datasets.schemes import LandmarkScheme

# The cache keeps this much more context than the model crop (side ratio), so
# rotations, zoom-outs and shifts see real pixels where the image has them.
DEFAULT_CONTEXT = 1.5
# Salt of the per-epoch shuffle stream (the augmentation salts live in `augment`).
SALT_ORDER = 101
# Salt that separates the epoch stream from the per-batch augmentation stream.
SALT_BATCH = 102


@dataclasses.dataclass
class FaceCache:
    """Faces cropped once, at a wider context than the model crop, in one array.

    The cache frame has the same pixel scale as the model crop and the same
    centre; its side is `context` times larger (rounded so that the margin on
    each side is a whole number of pixels: the model crop is an exact slice).

    Args:
        images: (N, C, C, 3) uint8 wide crops.
        landmarks: (N, L, 2) float32 in cache pixels.
        visibility: (N, L) float32, 1 visible / 0 occluded.
        to_image: (N, 2, 3) float64 cache pixels -> image pixels.
        boxes: (N, 4) float32 face boxes in image pixels.
        size: the model crop side the cache was built for.
        margin: the model crop's margin (see `geometry.crop_matrix`).
        paths: where each face came from.
    """

    images: np.ndarray
    landmarks: np.ndarray
    visibility: np.ndarray
    to_image: np.ndarray
    boxes: np.ndarray
    size: int
    margin: float
    paths: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def context_size(self) -> int:
        """Side C of the cached crops."""
        return int(self.images.shape[1])

    @property
    def num_points(self) -> int:
        return int(self.landmarks.shape[1])

    def crop_matrices(self, size: int | None = None) -> np.ndarray:
        """(N, 2, 3) float64 cache pixels -> model crop pixels for a crop of side `size`."""
        size = self.size if size is None else int(size)
        return np.stack([chain_affine(crop_matrix(box, size, self.margin), to_image)
                         for box, to_image in zip(self.boxes, self.to_image)])

    def crop_landmarks(self, size: int | None = None) -> np.ndarray:
        """(N, L, 2) float32 landmarks in the pixels of a model crop of side `size` (default the
        cache's; no augmentation)."""
        matrices = self.crop_matrices(size)
        return np.stack([apply_affine(p, m) for p, m in zip(self.landmarks, matrices)]).astype(np.float32)


def context_side(size: int, context: float) -> int:
    """Cache side for a model crop of `size`: about `context * size`, same parity as `size`."""
    return int(size) + 2 * int(round(int(size) * (float(context) - 1.0) / 2.0))


def cache_faces(records: Sequence[FaceRecord], size: int, margin: float = DEFAULT_MARGIN,
                context: float = DEFAULT_CONTEXT, progress: bool = True) -> FaceCache:
    """Crops every face once into memory for `train_dataset` / `eval_dataset`.

    Args:
        records: the faces (each with its decoded image and box).
        size: the model crop side.
        margin: context around the box in the model crop (fraction of its longer side).
        context: side of the cached crop relative to the model crop (>= 1).
        progress: show a tqdm progress bar.

    Returns:
        A FaceCache; 3,000 faces at size 128 (cache side 192) take about 330 MB.
    """
    records = list(records)
    if not records:
        raise DataError("no faces to cache: the record list is empty")
    if int(size) <= 0:
        raise DataError(f"cache_faces: crop size must be positive, got {size}")
    if context < 1.0:
        raise DataError(f"cache_faces: context must be >= 1 (the cache must hold the model crop), got {context}")
    size = int(size)
    side = context_side(size, context)
    # Same pixel scale as the model crop: the box's longer side times (1 + margin) spans `size` pixels.
    cache_margin = (1.0 + margin) * side / size - 1.0
    num_points = records[0].landmarks.shape[0]
    images = np.zeros((len(records), side, side, 3), np.uint8)
    landmarks = np.zeros((len(records), num_points, 2), np.float32)
    visibility = np.ones((len(records), num_points), np.float32)
    to_image = np.zeros((len(records), 2, 3), np.float64)
    for i, record in enumerate(tqdm(records, desc="caching faces", unit="face", disable=not progress)):
        if record.landmarks.shape[0] != num_points:
            raise DataError(f"{record.path}: {record.landmarks.shape[0]} landmarks, but the first face "
                            f"({records[0].path}) has {num_points}; cache faces of one scheme at a time")
        image = np.asarray(record.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DataError(f"{record.path}: expected an RGB uint8 (H, W, 3) image, got "
                            f"{image.dtype} {image.shape}")
        images[i], matrix = crop_face(image, record.box, side, cache_margin)
        landmarks[i] = apply_affine(record.landmarks, matrix)
        if record.visibility is not None:
            visibility[i] = record.visibility
        to_image[i] = invert_affine(matrix)
    boxes = np.stack([record.box for record in records]).astype(np.float32)
    return FaceCache(images=images, landmarks=landmarks, visibility=visibility, to_image=to_image,
                     boxes=boxes, size=size, margin=float(margin), paths=[r.path for r in records])


def train_dataset(cache: FaceCache, scheme: LandmarkScheme, size: int, batch_size: int, seed: int,
                  augment: AugmentConfig = AugmentConfig(), shuffle: bool = True,
                  epochs: int | None = None, deterministic: bool = True,
                  start_step: int = 0, render_size: int | None = None) -> tf.data.Dataset:
    """Augmented training batches drawn from a FaceCache.

    Each face gets one random affine (rotation, zoom, shift, flip) composed with
    the cache->crop map into a single bilinear warp, then colour jitter and maybe
    an occluder; the landmarks it covers get visibility 0. Batches are full
    (the last partial batch of each epoch is dropped) and every random draw is
    stateless, seeded from (seed, epoch, step): the same seed gives the same
    batches, and each epoch has its own order and augmentation.

    Args:
        cache: faces from `cache_faces`.
        scheme: their landmark scheme (for the flip permutation).
        size: output crop side.
        batch_size: faces per batch.
        seed: the random seed.
        augment: augmentation parameters (`augment_config.NO_AUGMENT` for none).
        shuffle: shuffle the faces each epoch.
        epochs: number of passes; None repeats forever (what `model.fit` with
            `steps_per_epoch` wants). Calling `.repeat()` on a finite dataset
            replays the same epochs: pass `epochs` instead.
        deterministic: tf.data `options.deterministic` (order of the batches;
            their content depends on the seed only).
        start_step: batches to leave out at the start, counted over all epochs
            (`len(cache) // batch_size` batches each): the stream is the one of
            `start_step=0` without its first `start_step` batches, so a resumed
            training run continues where the interrupted one stopped.
        render_size: when larger than `size`, every augmented crop (warp, colour,
            occluders) is made at this side first and shrunk to `size` (bilinear);
            the targets then also hold the large crop as "rendered" (what a
            distillation teacher of a finer input sees, with the same augmentation).
            The cache must be built for this side (`cache_faces(records,
            render_size, ...)`), so that it holds that much detail.

    Returns:
        A dataset of `(images, {"landmarks", "visibility"})`: images float32
        (B, size, size, 3) in 0..255, landmarks (B, L, 2) float32 crop pixels,
        visibility (B, L) float32; with a `render_size`, also "rendered"
        (B, render_size, render_size, 3) float32.
    """
    num_faces = len(cache)
    if scheme.num_points != cache.num_points:
        raise DataError(f"scheme {scheme.name} has {scheme.num_points} points but the cached faces have "
                        f"{cache.num_points}")
    if batch_size <= 0 or batch_size > num_faces:
        raise DataError(f"batch size must be in [1, {num_faces}] (the number of cached faces), got {batch_size}")
    if epochs is not None and epochs <= 0:
        raise DataError(f"epochs must be a positive number or None (forever), got {epochs}")
    if start_step < 0:
        raise DataError(f"start_step must be >= 0, got {start_step}")
    size = int(size)
    if render_size is not None and int(render_size) < size:
        raise DataError(f"render_size must be at least the crop size {size}, got {render_size}")
    rendered = render_size is not None and int(render_size) > size
    side = int(render_size) if rendered else size
    if rendered and cache.size < side:
        raise DataError(f"the cache was built for {cache.size} px crops; render_size {side} needs a cache "
                        f"built for it (cache_faces(records, {side}, ...)), or the rendered crops only "
                        f"enlarge the coarser one")
    steps = num_faces // batch_size
    images = tf.constant(cache.images)
    points = tf.constant(cache.landmarks)
    visibility = tf.constant(cache.visibility)
    base = tf.constant(cache.crop_matrices(side).astype(np.float32))
    permutation = scheme.flip_permutation
    root = tf.constant([seed, 0], tf.int64)

    def epoch_batches(epoch):
        epoch_key = tf.random.experimental.stateless_fold_in(root, epoch)
        if shuffle:
            noise = tf.random.stateless_uniform(
                [num_faces], tf.random.experimental.stateless_fold_in(epoch_key, SALT_ORDER))
            order = tf.argsort(noise, stable=True)
        else:
            order = tf.range(num_faces)
        order = tf.reshape(order[:steps * batch_size], [steps, batch_size])
        return tf.data.Dataset.from_tensor_slices(order).enumerate().map(
            lambda step, index: (epoch, step, index))

    def make_batch(epoch, step, index):
        key = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(root, SALT_BATCH), epoch)
        key = tf.random.experimental.stateless_fold_in(key, step)
        affine, flip = aug.random_affine(key, batch_size, side, augment)
        matrix = aug.compose_affine(affine, tf.gather(base, index))
        batch = aug.warp_batch(tf.gather(images, index), matrix, side)
        landmarks = aug.transform_points(tf.gather(points, index), matrix)
        landmarks, flags = aug.flip_labels(landmarks, tf.gather(visibility, index), flip, permutation)
        batch = aug.jitter_colour(batch, key, augment)
        batch, hidden = aug.add_occluders(batch, landmarks, key, augment)
        flags = flags * (1.0 - tf.cast(hidden, tf.float32))
        targets = {"visibility": flags}
        if rendered:
            targets["rendered"] = tf.ensure_shape(batch, [batch_size, side, side, 3])
            batch = tf.image.resize(batch, [size, size], method="bilinear")
            landmarks = resize_points(landmarks, side, size)
        targets["landmarks"] = landmarks
        batch = tf.ensure_shape(batch, [batch_size, size, size, 3])
        return batch, targets

    first_epoch, skipped = divmod(int(start_step), steps)
    epoch_ids = (tf.data.Dataset.counter(first_epoch) if epochs is None
                 else tf.data.Dataset.range(first_epoch, epochs))
    dataset = epoch_ids.flat_map(epoch_batches).skip(skipped)   # skips indices only: no batch is built
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return _with_options(dataset.prefetch(tf.data.AUTOTUNE), deterministic)


def eval_dataset(cache: FaceCache, size: int, batch_size: int, deterministic: bool = True) -> tf.data.Dataset:
    """Plain model crops of cached faces, in order, with the matrices back to the image.

    Args:
        cache: faces from `cache_faces`.
        size: crop side.
        batch_size: faces per batch (the last batch may be smaller).
        deterministic: tf.data `options.deterministic`.

    Returns:
        A dataset of `(images, landmarks, matrix)`: images float32
        (B, size, size, 3) in 0..255, landmarks (B, L, 2) float32 in crop
        pixels, matrix (B, 2, 3) float64 crop pixels -> image pixels.
    """
    if batch_size <= 0:
        raise DataError(f"batch size must be positive, got {batch_size}")
    size = int(size)
    base = cache.crop_matrices(size)
    to_image = np.stack([chain_affine(m, invert_affine(b)) for m, b in zip(cache.to_image, base)])
    images = tf.constant(cache.images)
    base_tf = tf.constant(base.astype(np.float32))
    landmarks = tf.constant(np.stack([apply_affine(p, b) for p, b in zip(cache.landmarks, base)]), tf.float32)
    to_image_tf = tf.constant(to_image, tf.float64)

    def make_batch(index):
        batch = aug.warp_batch(tf.gather(images, index), tf.gather(base_tf, index), size)
        return batch, tf.gather(landmarks, index), tf.gather(to_image_tf, index)

    dataset = tf.data.Dataset.range(len(cache)).batch(batch_size).map(make_batch,
                                                                        num_parallel_calls=tf.data.AUTOTUNE)
    return _with_options(dataset.prefetch(tf.data.AUTOTUNE), deterministic)


def _with_options(dataset: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    return dataset.with_options(options)
