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
