"""Developer scripts, run from the repository root: `python -m tools.<name> --help`.

- `benchmark_training`: training images per second of named configs.
- `benchmark_pipeline`: the tf.data input pipeline's crops per second.
- `soak`: memory over many predictions in one process.
- `fit_box_adjustment`: a detector's raw box -> tight landmark box mapping.
"""
