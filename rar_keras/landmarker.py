"""The Python API, where users import it: `from rar_keras.landmarker import FaceLandmarker`.

See `rar_keras.inference.face_landmarker` for the implementation.
"""

from rar_keras.inference.face_landmarker import (DEFAULT_DETECTOR, DEFAULT_PRESET, FaceLandmarker, FaceLandmarks,
                                                 LandmarkerOptions, LandmarkerResult, image_files, load_image)

__all__ = ["DEFAULT_DETECTOR", "DEFAULT_PRESET", "FaceLandmarker", "FaceLandmarks", "LandmarkerOptions",
           "LandmarkerResult", "image_files", "load_image"]
