"""Installs keras_meta: meta-learning for Keras 3 on TensorFlow."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent

setuptools.setup(
    name="keras_meta",
    version="0.1.0",
    description="Meta-learning (MAML and its family) for Keras 3 on TensorFlow.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=setuptools.find_packages(include=["keras_meta", "keras_meta.*"]),
    include_package_data=True,
    package_data={"keras_meta.data.omniglot_minimal": ["*.zip", "LICENSE", "README.md"]},
    # The Python versions of TensorFlow 2.18-2.21 (3.9 lacks the `X | None` annotations used here).
    python_requires=">=3.10,<3.14",
    install_requires=[
        # Tested bounds (CI installs the lowest pair and the newest): keras_meta/keras_internals.py.
        "tensorflow>=2.18,<2.22",
        "keras>=3.8,<3.16",
        "tensorflow-datasets",
        "importlib_resources",  # TFDS imports it to prepare datasets defined outside TFDS
        "absl-py",
        "numpy",
        "matplotlib",
        "tensorboard",  # Keras's TensorBoard callback, used by `python -m keras_meta.train`
    ],
    extras_require={
        # Hyperparameter search (`python -m keras_meta.tune`, `keras_meta.tune`).
        "tune": ["keras-tuner>=1.4"],
        # The tests cover the search too, so they need KerasTuner.
        "test": ["pytest", "hypothesis", "keras-tuner>=1.4"],
    },
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
