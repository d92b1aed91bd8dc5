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
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "tensorflow-datasets",
        "importlib_resources",  # TFDS imports it to prepare datasets defined outside TFDS
        "absl-py",
        "numpy",
        "matplotlib",
        "tensorboard",  # Keras's TensorBoard callback, used by `python -m keras_meta.train`
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
