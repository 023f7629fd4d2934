"""Training: the `fit` loop behind `python -m rar_keras.train`, its callbacks, `--init-from`, and
the distribution workarounds."""
