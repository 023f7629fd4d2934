"""Training augmentation on whole batches in TensorFlow: one random affine per face,
colour jitter, greyscale, and synthetic occluders that mark the landmarks they hide.

Everything is driven by stateless random ops: the same seed gives the same
batch, bit for bit, however the tf.data pipeline schedules its work.
"""

from __future__ import annotations

import math

import tensorflow as tf

from datasets.augment_config import AugmentConfig

# Salts that give each random decision of a batch its own stateless stream.
SALT_ROTATION, SALT_SCALE, SALT_SHIFT, SALT_FLIP = 1, 2, 3, 4
SALT_BRIGHTNESS, SALT_CONTRAST, SALT_SATURATION, SALT_GREYSCALE = 11, 12, 13, 14
SALT_OCCLUDE, SALT_AREA, SALT_ASPECT, SALT_CENTRE, SALT_SHAPE, SALT_FILL, SALT_COLOUR, SALT_NOISE = (
    21, 22, 23, 24, 25, 26, 27, 28)
SALT_PHOTO, SALT_PHOTO_SHIFT, SALT_SECOND = 29, 30, 31

PIXEL_MAX = 255.0
# ITU-R BT.601 luma weights (what tf.image.rgb_to_grayscale uses).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# An ellipse inscribed in a w x h box covers pi/4 of it: its axes are stretched
# by sqrt(4/pi) so that rectangles and ellipses cover the same drawn area.
ELLIPSE_AREA_STRETCH = math.sqrt(4.0 / math.pi)


def _uniform(seed, salt, shape, low=0.0, high=1.0):
    return tf.random.stateless_uniform(shape, tf.random.experimental.stateless_fold_in(seed, salt),
                                       minval=low, maxval=high, dtype=tf.float32)


# === Geometry ===

def random_affine(seed, batch: int, size: int, config: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws one affine per face, about the crop centre: flip, zoom, rotation, shift.

    Args:
        seed: stateless seed, int32/int64 tensor of shape (2,).
        batch: number of faces B.
        size: crop side in pixels.
        config: the augmentation parameters.

    Returns:
        matrix: (B, 2, 3) float32, crop pixels -> augmented crop pixels.
        flip: (B,) bool, whether the face was mirrored (its landmarks then need
            the scheme's flip permutation, see `flip_labels`).
    """
    angle = _uniform(seed, SALT_ROTATION, [batch], -config.rotation, config.rotation) * (math.pi / 180.0)
    zoom = _uniform(seed, SALT_SCALE, [batch], config.scale[0], config.scale[1])
    shift = _uniform(seed, SALT_SHIFT, [batch, 2], -config.shift, config.shift) * float(size)
    flip = _uniform(seed, SALT_FLIP, [batch]) < config.flip_prob
    mirror = tf.where(flip, -1.0, 1.0)
    cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
    linear = tf.stack([tf.stack([cos * mirror, -sin], -1), tf.stack([sin * mirror, cos], -1)], -2)
    centre = tf.fill([batch, 2], (size - 1) / 2.0)
    offset = centre + shift - tf.einsum("bij,bj->bi", linear, centre)
    return tf.concat([linear, offset[..., None]], -1), flip


def compose_affine(outer: tf.Tensor, inner: tf.Tensor) -> tf.Tensor:
    """(B, 2, 3) matrices of `outer(inner(p))`."""
    linear = tf.matmul(outer[..., :2], inner[..., :2])
    offset = tf.einsum("bij,bj->bi", outer[..., :2], inner[..., 2]) + outer[..., 2]
    return tf.concat([linear, offset[..., None]], -1)


def invert_affine_batch(matrix: tf.Tensor) -> tf.Tensor:
    """Inverses of (B, 2, 3) affine matrices."""
    a, b, tx = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 0, 2]
    c, d, ty = matrix[:, 1, 0], matrix[:, 1, 1], matrix[:, 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return tf.stack([tf.stack([ia, ib, -(ia * tx + ib * ty)], -1),
                     tf.stack([ic, id_, -(ic * tx + id_ * ty)], -1)], -2)


def transform_points(points: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """Applies (B, 2, 3) matrices to (B, L, 2) points."""
    return tf.einsum("blj,bij->bli", points, matrix[..., :2]) + matrix[:, None, :, 2]


def warp_batch(images: tf.Tensor, matrix: tf.Tensor, size: int, fill_mode: str = "CONSTANT") -> tf.Tensor:
    """Resamples a batch with one affine per image (bilinear; black outside by default).

    Pixel centres sit on integers in both frames, as in OpenCV.

    Args:
        images: (B, H, W, C) uint8 or float.
        matrix: (B, 2, 3) source pixels -> output pixels.
        size: output side.
        fill_mode: what lies outside the source: "CONSTANT" (zeros) or "NEAREST" (the edge repeated).

    Returns:
        (B, size, size, C) float32.
    """
    inverse = invert_affine_batch(tf.cast(matrix, tf.float32))
    # ImageProjectiveTransformV3 wants output->input as [a0 a1 a2 b0 b1 b2 c0 c1].
    transforms = tf.concat([tf.reshape(inverse, [-1, 6]), tf.zeros_like(inverse[:, 0, :2])], -1)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([size, size], tf.int32),
        fill_value=tf.constant(0.0, tf.float32), interpolation="BILINEAR", fill_mode=fill_mode)
    return tf.cast(warped, tf.float32)


def flip_labels(points: tf.Tensor, visibility: tf.Tensor, flip: tf.Tensor, permutation) -> tuple[tf.Tensor, tf.Tensor]:
    """Re-labels mirrored faces: landmark i of a flipped face is `points[permutation[i]]`.

    Args:
        points: (B, L, 2) landmarks already moved by the mirroring affine.
        visibility: (B, L) flags.
        flip: (B,) bool.
        permutation: (L,) the scheme's flip permutation.
    """
    permutation = tf.constant(permutation, tf.int32)
    identity = tf.range(tf.shape(permutation)[0], dtype=tf.int32)
    order = tf.where(flip[:, None], permutation[None], identity[None])
    return tf.gather(points, order, batch_dims=1), tf.gather(visibility, order, batch_dims=1)


# === Colour ===

def jitter_colour(images: tf.Tensor, seed, config: AugmentConfig) -> tf.Tensor:
    """Random brightness, contrast, saturation and greyscale on float 0..255 images (B, H, W, 3)."""
    batch = tf.shape(images)[0]
    luma_weights = tf.constant(LUMA_WEIGHTS, tf.float32)
    grey = tf.reduce_sum(images * luma_weights, -1, keepdims=True)
    saturation = _uniform(seed, SALT_SATURATION, [batch], 1.0 - config.saturation, 1.0 + config.saturation)
    to_grey = _uniform(seed, SALT_GREYSCALE, [batch]) < config.greyscale_prob
    saturation = tf.where(to_grey, 0.0, saturation)[:, None, None, None]
    images = grey + (images - grey) * saturation
    contrast = _uniform(seed, SALT_CONTRAST, [batch], 1.0 - config.contrast, 1.0 + config.contrast)
    mean = tf.reduce_mean(grey, axis=[1, 2, 3], keepdims=True)
    images = mean + (images - mean) * contrast[:, None, None, None]
    brightness = _uniform(seed, SALT_BRIGHTNESS, [batch], -config.brightness, config.brightness) * PIXEL_MAX
    return tf.clip_by_value(images + brightness[:, None, None, None], 0.0, PIXEL_MAX)


# === Occluders ===

def random_occluders(seed, batch: int, size: int, config: AugmentConfig,
                     probability: float | None = None) -> dict[str, tf.Tensor]:
    """Draws at most one occluder per face (with `probability`, default `config.occluder_prob`):
    a rectangle or ellipse inside the crop.

    Returns a dict of (B,) tensors: `on` (bool), `cx`, `cy`, `half_w`, `half_h`
    (pixels) and `ellipse` (bool).
    """
    area = _uniform(seed, SALT_AREA, [batch], config.occluder_area[0], config.occluder_area[1])
    log_aspect = _uniform(seed, SALT_ASPECT, [batch], math.log(config.occluder_aspect[0]),
                          math.log(config.occluder_aspect[1]))
    aspect = tf.exp(log_aspect)
    ellipse = _uniform(seed, SALT_SHAPE, [batch]) < config.ellipse_prob
    stretch = tf.where(ellipse, ELLIPSE_AREA_STRETCH, 1.0)
    half_w = tf.minimum(tf.sqrt(area * aspect) * stretch, 1.0) * (size / 2.0)
    half_h = tf.minimum(tf.sqrt(area / aspect) * stretch, 1.0) * (size / 2.0)
    centre = _uniform(seed, SALT_CENTRE, [batch, 2])
    last = float(size - 1)
    cx = half_w + centre[:, 0] * tf.maximum(last - 2.0 * half_w, 0.0)
    cy = half_h + centre[:, 1] * tf.maximum(last - 2.0 * half_h, 0.0)
    probability = config.occluder_prob if probability is None else probability
    on = _uniform(seed, SALT_OCCLUDE, [batch]) < probability
    return {"on": on, "cx": cx, "cy": cy, "half_w": half_w, "half_h": half_h, "ellipse": ellipse}


def inside_occluder(x: tf.Tensor, y: tf.Tensor, occluder: dict[str, tf.Tensor]) -> tf.Tensor:
    """Whether points (x, y), broadcast against (B, 1, ...) occluder parameters, are covered."""
    def expand(value):
        return tf.reshape(value, [-1] + [1] * (len(x.shape) - 1))

    dx = (x - expand(occluder["cx"])) / expand(occluder["half_w"])
    dy = (y - expand(occluder["cy"])) / expand(occluder["half_h"])
    in_rect = tf.logical_and(tf.abs(dx) <= 1.0, tf.abs(dy) <= 1.0)
    in_ellipse = dx * dx + dy * dy <= 1.0
    covered = tf.where(expand(occluder["ellipse"]), in_ellipse, in_rect)
    return tf.logical_and(covered, expand(occluder["on"]))


def add_occluders(images: tf.Tensor, points: tf.Tensor, seed, config: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """Paints random occluders on float 0..255 images and reports which landmarks they hide.

    Each face gets an occluder with `config.occluder_prob`, and a second one with
    `config.second_occluder_prob`. An occluder is filled with a patch of another face of the
    batch (`photo_prob`; real occluders look like photos), else with noise (`noise_prob`) or a
    flat colour.

    Args:
        images: (B, S, S, 3) float32.
        points: (B, L, 2) landmarks in the same crop pixels.
        seed: stateless seed (2,).
        config: the augmentation parameters.

    Returns:
        images with occluders, and (B, L) bool: landmark covered by an occluder.
    """
    images, hidden, _ = _paint_occluders(images, points, seed, config)
    return images, hidden


def paint_occluders(images: tf.Tensor, seed, config: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """The occluders of `add_occluders` (same draws for the same seed), with the pixels they cover.

    Args:
        images: (B, S, S, 3) float32 0..255.
        seed: stateless seed (2,).
        config: the augmentation parameters.

    Returns:
        images with occluders, and (B, S, S) bool: the pixels an occluder covers (the target of the
        occluder mask head, `rar_keras.training.occluder_mask`).
    """
    images, _, covered = _paint_occluders(images, tf.zeros([tf.shape(images)[0], 0, 2]), seed, config)
    return images, covered


def _paint_occluders(images, points, seed, config: AugmentConfig):
    """(images, (B, L) hidden points, (B, S, S) covered pixels) after the first and second occluder."""
    photos = tf.roll(images, 1, axis=0)        # another face's pixels for every face
    images, hidden, mask = _paint_occluder(images, photos, points, seed, config, config.occluder_prob)
    second = tf.random.experimental.stateless_fold_in(seed, SALT_SECOND)
    images, hidden_second, mask_second = _paint_occluder(images, photos, points, second, config,
                                                         config.second_occluder_prob)
    return images, tf.logical_or(hidden, hidden_second), tf.logical_or(mask, mask_second)[..., 0]


def _paint_occluder(images, photos, points, seed, config: AugmentConfig, probability: float):
    batch, size = tf.shape(images)[0], images.shape[1]
    occluder = random_occluders(seed, batch, size, config, probability)
    grid = tf.range(size, dtype=tf.float32)
    mask = inside_occluder(grid[None, None, :], grid[None, :, None], occluder)[..., None]
    colour = _uniform(seed, SALT_COLOUR, [batch, 1, 1, 3], 0.0, PIXEL_MAX)
    noisy = _uniform(seed, SALT_FILL, [batch]) < config.noise_prob
    noise = _uniform(seed, SALT_NOISE, tf.shape(images), 0.0, PIXEL_MAX)
    shift = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(seed, SALT_PHOTO_SHIFT),
                                        minval=0, maxval=size, dtype=tf.int32)
    photo = tf.roll(photos, shift, axis=[1, 2])
    use_photo = _uniform(seed, SALT_PHOTO, [batch]) < config.photo_prob
    fill = tf.where(use_photo[:, None, None, None], photo, tf.where(noisy[:, None, None, None], noise, colour))
    hidden = inside_occluder(points[..., 0], points[..., 1], occluder)
    return tf.where(mask, fill, images), hidden, mask
