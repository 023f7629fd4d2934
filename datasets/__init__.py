"""rar-keras dataset readers, landmark schemes and the tf.data input pipeline.

This top-level package is named `datasets`, like Hugging Face's package of the
same name. If that one is installed in the same environment, one shadows the
other: `rar_keras` checks `IS_RAR_KERAS_DATASETS` and fails with a clear message.
"""

IS_RAR_KERAS_DATASETS = True

from datasets.errors import DataError  # noqa: E402
from datasets.record import FaceRecord, landmark_box  # noqa: E402
from datasets.schemes import AFLW19, COFW29, SCHEMES, W300, WFLW98, LandmarkScheme, get_scheme  # noqa: E402

__all__ = ["AFLW19", "COFW29", "DataError", "FaceRecord", "IS_RAR_KERAS_DATASETS", "LandmarkScheme",
           "SCHEMES", "W300", "WFLW98", "get_scheme", "landmark_box"]
