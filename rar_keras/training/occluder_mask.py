"""Training a model's occluder mask head: the rest of the model frozen, occluders painted on face crops.

The occluders are the training pipeline's own (`datasets.augment.paint_occluders`: rectangles and
ellipses filled with another face of the batch, noise or a flat colour), on every crop and a second
one on half of them; the target is the covered fraction of each heatmap cell. Only the head's
weights change, so the model's single pass (and every figure measured with it) stays as it was.
"""

from __future__ import annotations

from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from datasets.augment import paint_occluders
from datasets.augment_config import AugmentConfig

# Every crop gets an occluder, half of them a second; half are photos of another face.
MASK_AUGMENT = AugmentConfig(occluder_prob=1.0, second_occluder_prob=0.5, photo_prob=0.5)
DEFAULT_LEARNING_RATE = 2e-3


def mask_target(mask: tf.Tensor, stride: int) -> tf.Tensor:
    """(B, S, S) bool pixels -> (B, S / stride, S / stride, 1): the covered fraction of each cell."""
    return tf.nn.avg_pool2d(tf.cast(mask, tf.float32)[..., None], stride, stride, "VALID")


def mask_loss(logits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean sigmoid cross-entropy of the head's logits against the covered fractions."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits))


def train_occluder_mask(model, crops: np.ndarray, epochs: int, batch_size: int = 32,
                        learning_rate: float = DEFAULT_LEARNING_RATE, seed: int = 0,
                        progress: Callable[[Iterable], Iterable] = lambda batches: batches) -> list[float]:
    """Trains `model.occluder_mask` on face crops; returns each epoch's mean loss.

    Args:
        model: a built `RARLandmarker` whose config has `occluder_mask` (its other weights are
            left as they are).
        crops: (N, S, S, 3) uint8 training face crops at the model's input size.
        epochs: passes over the crops, each with new occluders and mirrored halves.
        batch_size: crops per step (the last, smaller batch of an epoch is left out).
        learning_rate: Adam's step size.
        seed: the shuffling, mirroring and occluder draws.
        progress: wraps each epoch's batch iterator (e.g. a tqdm bar).
    """
    if model.occluder_mask is None:
        raise ValueError("the model has no occluder mask head: build it from a config with occluder_mask=true")
    crops = np.asarray(crops)
    size = model.config.input_size
    if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or len(crops) == 0:
        raise ValueError(f"crops must be (N >= 1, {size}, {size}, 3), got {crops.shape}")
    batch_size = min(int(batch_size), len(crops))
    head, stride = model.occluder_mask, model.config.heatmap_stride
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(head.weights)

    @tf.function(reduce_retracing=True)
    def step(images, step_seed):
        mirrored = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], step_seed) < 0.5
        images = tf.where(mirrored, tf.reverse(images, [2]), images)
        painted, covered = paint_occluders(images, tf.random.experimental.stateless_fold_in(step_seed, 1),
                                           MASK_AUGMENT)
        # The model holds the head frozen (for `fit`), so the tape watches its variables explicitly.
        watched = [variable.value for variable in head.weights]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            loss = mask_loss(model.occluder_mask_logits(painted), mask_target(covered, stride))
        optimizer.apply(tape.gradient(loss, watched), head.weights)
        return loss

    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(int(epochs)):
        order = rng.permutation(len(crops))
        starts = range(0, len(order) - batch_size + 1, batch_size)
        losses = [float(step(tf.constant(crops[order[start:start + batch_size]], tf.float32),
                             tf.constant([seed, epoch * len(crops) + start], tf.int64)))
                  for start in progress(starts)]
        history.append(float(np.mean(losses)))
    return history
