"""Standard few-shot backbones as plain Keras models."""

import keras


def mlp(hidden=(40, 40), outputs=1, input_shape=(1,), activation="relu", name="mlp"):
    """The MAML-paper regression network: `[N, *input_shape]` → `[N, outputs]`.

    Args:
      hidden: widths of the hidden layers.
      outputs: size of the output layer (linear).
      input_shape: feature shape of one example.
      activation: hidden-layer activation.
    """
    layers = [keras.Input(input_shape)]
    layers += [keras.layers.Dense(width, activation=activation) for width in hidden]
    layers.append(keras.layers.Dense(outputs))
    return keras.Sequential(layers, name=name)


def conv4(ways, filters=64, input_shape=(28, 28, 1), name="conv4"):
    """The MAML-paper image classifier: `[N, 28, 28, 1]` → `[N, ways]` logits.

    Four blocks of 3×3 convolution (`filters` channels), batch norm, ReLU and
    2×2 max-pooling, then a linear layer. Under a `MetaModel`, batch norm
    always uses the statistics of the batch it sees (see `MAML`).
    """
    layers = [keras.Input(input_shape)]
    for _ in range(4):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
        ]
    layers += [keras.layers.Flatten(), keras.layers.Dense(ways)]
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
    `BATCH_NORM_MOMENTUM`.

    Args:
      filters: channels of every convolution.
      input_shape: feature shape of one example.
      pooled_blocks: how many blocks (the first ones) end with max-pooling, 0..4.
      flatten: flatten the output to `[N, features]`; otherwise return maps.
    """
    if isinstance(pooled_blocks, bool) or pooled_blocks not in range(5):
        raise ValueError(f"`pooled_blocks` must be an int in 0..4; received {pooled_blocks!r}.")
    layers = [keras.Input(input_shape)]
    for block in range(4):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same"),
            keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM),
            keras.layers.ReLU(),
        ]
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
    regularisation is not included.

    Args:
      filters: channels of the four blocks.
      input_shape: feature shape of one example (84×84×3 for miniImageNet,
        28×28×1 for Omniglot).
    """
    if (not isinstance(filters, (list, tuple)) or len(filters) != 4
            or not all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters)):
        raise ValueError(f"`filters` must be four positive ints; received {filters!r}.")
    inputs = keras.Input(input_shape)
    x = inputs
    for block, width in enumerate(filters):
        shortcut = keras.layers.Conv2D(width, 1, use_bias=False, name=f"block{block}_shortcut")(x)
        shortcut = keras.layers.BatchNormalization(
            momentum=BATCH_NORM_MOMENTUM, name=f"block{block}_shortcut_bn")(shortcut)
        for conv in range(3):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False,
                                    name=f"block{block}_conv{conv}")(x)
            x = keras.layers.BatchNormalization(
                momentum=BATCH_NORM_MOMENTUM, name=f"block{block}_bn{conv}")(x)
            if conv < 2:
                x = keras.layers.LeakyReLU(0.1)(x)
        x = keras.layers.LeakyReLU(0.1)(keras.layers.Add()([x, shortcut]))
        x = keras.layers.MaxPooling2D(2, padding="same")(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name=name)
