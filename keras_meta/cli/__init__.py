"""The pieces of `python -m keras_meta.train`: presets, flag resolution, the
models and episode streams a run needs, and its report."""
