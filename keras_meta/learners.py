"""Standard few-shot backbones as plain Keras models.

Initialisation (measured in `benchmarks/accuracy_parity.py`): conv4 and
its embedding start as the same network built in PyTorch from `nn.Conv2d`,
`nn.Linear` and `nn.BatchNorm2d` with their defaults does: kernels and
biases uniform in ±1/√fan_in (`torch.nn.init.kaiming_uniform_` with
a = √5, and its bias rule), batch norm with ε = 1e-5. Keras's own
defaults (glorot-uniform kernels, zero biases, ε = 1e-3) made MAML on the
README's main job 4.6 points less accurate (mean of 3 seeds; README,
"Accuracy against PyTorch at equal budgets").
"""

import math

import keras


def mlp(hidden=(40, 40), outputs=1, input_shape=(1,), activation="relu", name="mlp"):
    """The MAML-paper regression network: `[N, *input_shape]` → `[N, outputs]`.

    Args:
      hidden: widths of the hidden layers.
      outputs: size of the output layer (linear).
      input_shape: feature shape of one example.
      activation: hidden-layer activation.
      name: the model's name.

    Returns:
      A `keras.Sequential` model.

    Initialised with Keras's defaults (glorot-uniform kernels, zero biases),
    with which the sinusoid results of the README were measured.

    Example:

    ```python
    learner = km.learners.mlp(hidden=(40, 40))
    learner(np.zeros((5, 1), "float32")).shape  # (5, 1)
    ```
    """
    layers = [keras.Input(input_shape)]
    layers += [keras.layers.Dense(width, activation=activation) for width in hidden]
    layers.append(keras.layers.Dense(outputs))
    return keras.Sequential(layers, name=name)


# PyTorch's `nn.BatchNorm2d` default; Keras's is 1e-3.
BATCH_NORM_EPSILON = 1e-5


def fan_in_uniform():
    """PyTorch's default kernel initialisation (`kaiming_uniform_`, a = √5):
    U(−1/√fan_in, 1/√fan_in), fan_in = kernel height × width × input channels.

    Returns:
      A `keras.initializers.VarianceScaling` initializer.

    Example:

    ```python
    layer = keras.layers.Conv2D(32, 3, kernel_initializer=km.learners.fan_in_uniform())
    ```
    """
    return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform")


def fan_in_uniform_bias(fan_in):
    """PyTorch's default bias initialisation: U(−1/√fan_in, 1/√fan_in) with
    the fan-in of the layer's kernel.

    Args:
      fan_in: the number of inputs of one output unit of the layer
        (kernel height × width × input channels).

    Returns:
      A `keras.initializers.RandomUniform` initializer.

    Example:

    ```python
    layer = keras.layers.Conv2D(32, 3, kernel_initializer=km.learners.fan_in_uniform(),
                                bias_initializer=km.learners.fan_in_uniform_bias(3 * 3 * 1))
    ```
    """
    bound = 1 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def fan_out_normal():
    """`kaiming_normal_` with mode fan_out: N(0, 2 / fan_out), fan_out =
    kernel height × width × output channels.

    Returns:
      A `keras.initializers.VarianceScaling` initializer.

    Example:

    ```python
    layer = keras.layers.Conv2D(64, 3, use_bias=False,
                                kernel_initializer=km.learners.fan_out_normal())
    ```
    """
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out",
                                              distribution="untruncated_normal")


def _conv_block(filters, in_channels, momentum=0.99):
    """3×3 convolution ("same") and batch norm, initialised as in PyTorch."""
    return [
        keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=fan_in_uniform(),
                            bias_initializer=fan_in_uniform_bias(9 * in_channels)),
        keras.layers.BatchNormalization(momentum=momentum, epsilon=BATCH_NORM_EPSILON),
    ]


def conv4(ways, filters=64, input_shape=(28, 28, 1), name="conv4"):
    """The MAML-paper image classifier: `[N, 28, 28, 1]` → `[N, ways]` logits.

    Four blocks of 3×3 convolution (`filters` channels), batch norm, ReLU and
    2×2 max-pooling, then a linear layer. Under a `MetaModel`, batch norm
    always uses the statistics of the batch it sees (see `MAML`).
    Initialised as PyTorch's defaults (see the module docstring).

    Args:
      ways: the number of classes, the size of the output layer.
      filters: channels of every convolution.
      input_shape: feature shape of one example.
      name: the model's name.

    Returns:
      A `keras.Sequential` model.

    Example:

    ```python
    learner = km.learners.conv4(ways=5, filters=32)
    learner(np.zeros((2, 28, 28, 1), "float32")).shape  # (2, 5)
    ```
    """
    layers = [keras.Input(input_shape)]
    in_channels = input_shape[-1]
    for _ in range(4):
        layers += [*_conv_block(filters, in_channels), keras.layers.ReLU(),
                   keras.layers.MaxPooling2D(2)]
        in_channels = filters
    features = filters * math.prod(size // 16 for size in input_shape[:-1])
    layers += [keras.layers.Flatten(),
               keras.layers.Dense(ways, kernel_initializer=fan_in_uniform(),
                                  bias_initializer=fan_in_uniform_bias(features))]
    return keras.Sequential(layers, name=name)


# Moving-statistics momentum of the embeddings' batch norm: PyTorch's default
# (momentum 0.1 there), which the metric-learning references use. Keras's 0.99
# leaves the statistics far from the data after a short run.
BATCH_NORM_MOMENTUM = 0.9


def conv4_embedding(filters=64, input_shape=(28, 28, 1), pooled_blocks=4, flatten=True,
                    name="conv4_embedding"):
    """The conv4 body without its classifier, the metric learners' embedding.

    Four blocks of 3×3 convolution (`filters` channels), batch norm and ReLU;
    the first `pooled_blocks` end with 2×2 max-pooling. With 28×28 inputs
    and all four blocks pooled, `[N, 28, 28, 1]` → `[N, filters]` (ProtoNet,
    Matching Networks); Relation Networks use `pooled_blocks=2,
    flatten=False`: `[N, 28, 28, 1]` → `[N, 7, 7, filters]` feature maps.
    Batch norm's moving statistics (used outside `fit`) have momentum
    `BATCH_NORM_MOMENTUM`. Initialised as PyTorch's defaults (see the
    module docstring).

    Args:
      filters: channels of every convolution.
      input_shape: feature shape of one example.
      pooled_blocks: how many blocks (the first ones) end with max-pooling, 0..4.
      flatten: flatten the output to `[N, features]`; otherwise return maps.
      name: the model's name.

    Returns:
      A `keras.Sequential` model.

    Example:

    ```python
    embedding = km.learners.conv4_embedding(filters=32)
    embedding(np.zeros((2, 28, 28, 1), "float32")).shape  # (2, 32)
    ```
    """
    if isinstance(pooled_blocks, bool) or pooled_blocks not in range(5):
        raise ValueError(f"`pooled_blocks` must be an int in 0..4; received {pooled_blocks!r}.")
    layers = [keras.Input(input_shape)]
    in_channels = input_shape[-1]
    for block in range(4):
        layers += [*_conv_block(filters, in_channels, BATCH_NORM_MOMENTUM), keras.layers.ReLU()]
        in_channels = filters
        if block < pooled_blocks:
            layers.append(keras.layers.MaxPooling2D(2))
    if flatten:
        layers.append(keras.layers.Flatten())
    return keras.Sequential(layers, name=name)


def resnet12(filters=(64, 160, 320, 640), input_shape=(84, 84, 3), name="resnet12"):
    """ResNet-12 (Oreshkin et al. 2018; Lee et al. 2019): `[N, *input_shape]` →
    `[N, filters[-1]]` features.

    Four residual blocks; each has three 3×3 convolutions with batch norm
    (leaky ReLU 0.1 between them), a 1×1 convolution + batch norm shortcut,
    a leaky ReLU after the sum and 2×2 max-pooling. Global average pooling
    gives the embedding. Batch norm as in `conv4_embedding`. DropBlock
    regularisation is not included. Kernels are initialised as in Lee et
    al.'s reference implementation (`kaiming_normal_`, mode fan_out: normal
    with variance 2 / (3 × 3 × output channels)), batch norm with ε = 1e-5.

    Args:
      filters: channels of the four blocks.
      input_shape: feature shape of one example (84×84×3 for miniImageNet,
        28×28×1 for Omniglot).
      name: the model's name.

    Returns:
      A functional `keras.Model`.

    Example:

    ```python
    embedding = km.learners.resnet12(filters=(8, 8, 8, 8), input_shape=(28, 28, 1))
    embedding(np.zeros((2, 28, 28, 1), "float32")).shape  # (2, 8)
    ```
    """
    if (not isinstance(filters, (list, tuple)) or len(filters) != 4
            or not all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters)):
        raise ValueError(f"`filters` must be four positive ints; received {filters!r}.")
    inputs = keras.Input(input_shape)
    x = inputs
    for block, width in enumerate(filters):
        shortcut = keras.layers.Conv2D(width, 1, use_bias=False, kernel_initializer=fan_out_normal(),
                                       name=f"block{block}_shortcut")(x)
        shortcut = keras.layers.BatchNormalization(
            momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON,
            name=f"block{block}_shortcut_bn")(shortcut)
        for conv in range(3):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False,
                                    kernel_initializer=fan_out_normal(),
                                    name=f"block{block}_conv{conv}")(x)
            x = keras.layers.BatchNormalization(
                momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON,
                name=f"block{block}_bn{conv}")(x)
            if conv < 2:
                x = keras.layers.LeakyReLU(0.1)(x)
        x = keras.layers.LeakyReLU(0.1)(keras.layers.Add()([x, shortcut]))
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name=name)
