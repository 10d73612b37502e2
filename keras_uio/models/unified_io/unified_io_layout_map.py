"""The layout map that shards a `UnifiedIOBackbone` over a device mesh."""

import keras

from keras_uio.models.device_mesh import check_device_mesh


def unified_io_layout_map(
    device_mesh,
    model_parallel_dim_name="model",
    data_parallel_dim_name="batch",
):
    """A `keras.distribution.LayoutMap` for model-parallel training.

    Follows keras-hub's convention (Gemma, Llama): the *model* axis of
    the mesh splits the vocabulary, the attention heads and the MLP
    width; the *data* axis splits the hidden (embedding) dimension of
    the same matrices, FSDP-style (they are all-gathered along the data
    axis where they are used). Per variable (`E` hidden, `H` heads,
    `D` head size, `M` MLP width, `V` text + image vocabulary):

    | variable | shape | layout |
    |---|---|---|
    | `token_embedding/embeddings` (tied output layer) | `[V, E]` | `(model, data)` |
    | `*attention/{query,key,value}/kernel` (encoder self, decoder self and cross) | `[E, H, D]` | `(data, model, None)` |
    | `*attention/output/kernel` | `[H, D, E]` | `(model, None, data)` |
    | `*_attention_bias/absolute/{query,key}/kernel` (position projections) | `[E, H, D]` | `(data, model, None)` |
    | `*_attention_bias/relative/{text,image}_bias` | `[H, buckets]` | `(model, None)` |
    | `*/mlp/{gate,up}/kernel` | `[E, M]` | `(data, model)` |
    | `*/mlp/down/kernel` | `[M, E]` | `(model, data)` |
    | `*_embedding/position_embeddings` | `[P, E]` | `(None, data)` |
    | `encoder_embedding/patch_embedding/projection/kernel` | `[768, E]` | `(None, data)` |

    Everything else (RMS norm scales `[E]`, segment embeddings
    `[segments, E]`) is replicated on purpose: it is small. Rules
    accept any path prefix, so they also apply to a backbone nested in
    another model. A dimension must divide the size of its mesh axis
    (e.g. `uio_small`'s 6 heads on a 4-wide model axis does not);
    `keras_uio.distribution.model_parallel` checks this per variable
    before allocating it and raises a `ValueError` naming the variable,
    its shape and the axis size.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh`.
        model_parallel_dim_name: the mesh axis that splits heads, MLP
            width and vocabulary.
        data_parallel_dim_name: the mesh axis that splits the batch
            (and the hidden dimension of the weights).

    Returns:
        A `keras.distribution.LayoutMap`.

    Example:

    ```python
    import keras
    import keras_uio
    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh(
        (1, len(devices)), ("batch", "model"), devices
    )
    layout_map = unified_io_layout_map(mesh)
    distribution = keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )
    with distribution.scope():
        backbone = keras_uio.UnifiedIOBackbone.from_preset(
            "uio_tiny", load_weights=False
        )
    ```
    """
    check_device_mesh(device_mesh, model_parallel_dim_name, data_parallel_dim_name)
    model, data = model_parallel_dim_name, data_parallel_dim_name
    prefix = r"(?:.*/)?"
    layer = prefix + r"(?:encoder|decoder)_layer_\d+/"
    bias = prefix + r"(?:encoder|decoder)_attention_bias/"
    layout_map = keras.distribution.LayoutMap(device_mesh)
    layout_map[prefix + "token_embedding/embeddings"] = (model, data)
    layout_map[
        layer + r"(?:attention|self_attention|cross_attention)/"
        r"(?:query|key|value)/kernel"
    ] = (data, model, None)
    layout_map[
        layer + r"(?:attention|self_attention|cross_attention)/output/kernel"
    ] = (model, None, data)
    layout_map[layer + r"mlp/(?:gate|up)/kernel"] = (data, model)
    layout_map[layer + r"mlp/down/kernel"] = (model, data)
    layout_map[bias + r"absolute/(?:query|key)/kernel"] = (data, model, None)
    layout_map[bias + r"relative/(?:text|image)_bias"] = (model, None)
    layout_map[prefix + r"(?:encoder|decoder)_embedding/position_embeddings"] = (
        None,
        data,
    )
    layout_map[prefix + "encoder_embedding/patch_embedding/projection/kernel"] = (
        None,
        data,
    )
    return layout_map
