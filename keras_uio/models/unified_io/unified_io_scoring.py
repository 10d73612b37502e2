"""`UnifiedIO.score`: losses of answer options, as the original ranks them.

The loss of an option is the summed negative log-likelihood of its tokens
under one teacher-forced decoder pass (the original's
`predict_with_answer_options`). Text options are read as the tokenizer
writes them, with EOS, and, as in the original, the decoder also predicts
EOS at the first padding position, so an option `[a, b, EOS]` scores `a`,
`b`, EOS and EOS again. `UnifiedIOPreprocessor` gives text answers that
second EOS as a training target, so that a model trained with `fit` has
learnt the position this scoring reads. Image options are VQ-GAN codes
(or images, encoded first), scored after the image start token.
"""

import keras
import numpy as np
from keras import ops

from keras_uio.host_arrays import to_numpy
from keras_uio.models.backend_compile import compile_for_backend


def option_losses(model, text_ids, images, masks, options, option_masks, average_loss):
    """`{"loss": [B, N], "best": [B]}` for checked encoder inputs.

    See `UnifiedIO.score` for the arguments.
    """
    b = model.backbone
    flat, is_image, count = _flat_options(model, options, option_masks, len(text_ids))
    if is_image:
        decoder_inputs, targets, weights = _image_option_targets(b, flat, option_masks)
    else:
        decoder_inputs, targets, weights = _text_option_targets(b, flat)
    key = ("score", is_image, count, tuple(id(v) for v in model.variables))
    if key not in model._compiled_functions:

        def run(text_ids, images, masks, *decoder_inputs_and_targets):
            return _target_log_probs(
                b,
                text_ids,
                images,
                masks,
                *decoder_inputs_and_targets,
                is_image=is_image,
                count=count,
            )

        # One pass, no loop: XLA on JAX pays off at once; a TensorFlow graph
        # would be traced anew for every option shape for no gain over eager.
        if keras.config.backend() == "jax":
            run = compile_for_backend(model, run)
        model._compiled_functions[key] = run
    picked = model._compiled_functions[key](
        text_ids, images, masks, *decoder_inputs, targets
    )
    losses = -to_numpy(picked) * weights
    loss = losses.sum(-1)
    if average_loss:
        loss = loss / np.maximum(weights.sum(-1), 1)
    loss = loss.reshape(-1, count)
    return {"loss": loss, "best": loss.argmin(-1)}


def _flat_options(model, options, option_masks, batch):
    """Checked options as `[B * N, L]` ids or codes, whether they are image
    codes, and N."""
    b = model.backbone
    options = to_numpy(options)
    if options.ndim not in (3, 5) or options.shape[0] != batch:
        raise ValueError(
            "`options` must be [batch, options, length] text ids, "
            "[batch, options, 256] image codes or [batch, options, R, R, 3] "
            f"images with batch {batch}; received {options.shape}."
        )
    count = options.shape[1]
    flat = options.reshape((batch * count,) + options.shape[2:])
    if options.ndim == 5:
        if model.vqgan is None:
            raise ValueError(
                "Image options need a VQ-GAN: build `UnifiedIO(backbone, vqgan)`."
            )
        flat = ops.convert_to_numpy(model.vqgan.encode(flat))
    elif not np.issubdtype(options.dtype, np.integer):
        raise ValueError(
            f"`options` ids must be integers; received dtype {options.dtype}."
        )
    is_image = options.ndim == 5 or option_masks is not None
    limit = b.image_vocabulary_size if is_image else b.vocabulary_size
    if flat.size and (flat.min() < 0 or flat.max() >= limit):
        what = "image codes" if is_image else "text ids"
        raise ValueError(
            f"`options` {what} must be in [0, {limit}); received values "
            f"in [{flat.min()}, {flat.max()}]."
        )
    return flat.astype("int32"), is_image, count


def _image_option_targets(backbone, codes, option_masks):
    """Decoder inputs, targets (codes) and weights of image options."""
    weights = np.ones(codes.shape, "float32")
    if option_masks is not None:
        option_masks = to_numpy(option_masks)
        if option_masks.size != codes.size:
            raise ValueError(
                "`option_masks` must have one 0/1 value per option code, "
                f"{codes.shape[1]} per option; received shape "
                f"{option_masks.shape}."
            )
        weights = option_masks.astype("float32").reshape(codes.shape)
        if not np.isin(weights, (0, 1)).all():
            raise ValueError("`option_masks` must hold only 0 and 1.")
    start = np.full((len(codes), 1), backbone.image_start_id, "int32")
    image_inputs = np.concatenate([start, codes[:, :-1] + backbone.vocabulary_size], 1)
    text_inputs = np.zeros((len(codes), 1), "int32")
    # The masked codes are also hidden from the decoder, as the original's
    # `predict_with_answer_options` does.
    decoder_inputs = (
        text_inputs,
        np.ones_like(text_inputs),
        image_inputs,
        weights.astype("int32"),
    )
    return decoder_inputs, codes, weights


def _text_option_targets(backbone, ids):
    """Decoder inputs, targets and weights of text options."""
    weights = np.pad(ids > 0, [(0, 0), (1, 0)], constant_values=True)
    targets = np.pad(ids, [(0, 0), (0, 1)])
    targets = targets + (weights & (targets == 0))  # EOS, as the original
    text_inputs = np.pad(ids, [(0, 0), (1, 0)])
    image_inputs = np.full((len(ids), 1), backbone.image_start_id, "int32")
    image_masks = np.ones_like(image_inputs)
    decoder_inputs = (text_inputs, weights.astype("int32"), image_inputs, image_masks)
    return decoder_inputs, targets.astype("int32"), weights.astype("float32")


def _target_log_probs(
    backbone,
    text_ids,
    images,
    masks,
    text_inputs,
    text_masks,
    image_inputs,
    image_masks,
    targets,
    is_image,
    count,
):
    """Log-probabilities `[B * N, L]` of the targets under one decoder pass
    over each modality's own ids."""
    encoded, encoder_mask = backbone.encode(text_ids, images, masks)
    encoded = ops.repeat(encoded, count, axis=0)
    encoder_mask = ops.repeat(encoder_mask, count, axis=0)
    text_logits, image_logits = backbone.decode(
        encoded,
        encoder_mask,
        text_inputs,
        text_masks,
        image_inputs,
        full_vocabulary=False,
        image_decoder_masks=image_masks,
    )
    logits = image_logits if is_image else text_logits
    log_probs = ops.log_softmax(logits, axis=-1)
    return ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
