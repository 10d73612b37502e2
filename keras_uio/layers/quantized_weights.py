"""Reading layer weights that `model.quantize(...)` may have replaced.

Keras' `model.quantize("int8")` swaps an `EinsumDense` kernel or an
`Embedding` table for int8 values plus a float scale per output channel
(the layer's own call divides by it). The few places that read such a
weight themselves rather than calling the layer (the attention output
projection, the tied output embeddings) read it through here, so they see
what the layer's own call would compute. Float layers are read exactly as
before: the float path is untouched.
"""

from keras import ops


def is_int8(layer):
    """Whether `layer` holds int8 weights this module reads directly
    (Keras' `int8` mode without LoRA; other modes are read through the
    layer's own call or dequantized)."""
    return layer.quantization_mode == "int8" and not getattr(
        layer, "lora_enabled", False
    )


def int8_matmul(rows, values, scale, inputs_quantizer, compute_dtype):
    """`rows [..., K] @ (values [K, N] / scale [N])`, in `compute_dtype`.

    `values` are int8, `scale` float with one entry per output column (Keras'
    per-channel int8 layout: the float weight is `values / scale`). With an
    `inputs_quantizer` (Keras' default int8 config) the rows are quantized
    per row as the layers' own int8 calls do and the product is int8 x int8
    -> int32; without one (weight-only, `Int8QuantizationConfig(
    activation_quantizer=None)`) the values are converted to `compute_dtype`
    for the product. Either way the scale is applied to the `[..., N]`
    result, never to a `[K, N]` copy of the weight.
    """
    if inputs_quantizer:
        rows, rows_scale = inputs_quantizer(rows, axis=-1)
        product = ops.cast(ops.matmul(rows, values), compute_dtype)
        return ops.divide(
            product, ops.cast(ops.multiply(rows_scale, scale), compute_dtype)
        )
    product = ops.matmul(rows, ops.cast(values, compute_dtype))
    return ops.divide(product, ops.cast(scale, compute_dtype))
