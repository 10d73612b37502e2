"""`UnifiedIO.generate`'s decode loop and everything tuned for its speed.

The loop decodes with a self-attention KV cache and a cross-attention cache
computed once: text first (greedy, sampled or beam search), then, for image
outputs, `max_decoder_image_length` image codes that the VQ-GAN turns into
pixels. Each backend runs it its own way (`compile_generate`): JAX as one
`jax.jit` with XLA:CPU options chosen for decoding, TensorFlow as one
`tf.function` graph, PyTorch eagerly step by step (all through
`models/backend_compile.py`, which holds the compiler settings). The
layouts chosen for decode speed live here.
"""

import weakref

import keras
from keras import ops

from keras_uio.layers.attention_bias import MASKED
from keras_uio.layers.attention_bias import padding_bias
from keras_uio.layers.quantized_weights import is_int8
from keras_uio.models.backend_compile import compile_for_backend
from keras_uio.vocab import Vocabulary


def compile_generate(
    model, output_tables, sampler, text_length, image_length, stop_at_eos
):
    """`function(text_ids, images, image_masks, uniforms)` for one setting.

    `output_tables` is the model's `OutputTables`; `images` and
    `image_masks` may be `None` (text alone is encoded); `uniforms
    [B, text_length + image_length]` are the sampler's draws
    (`unified_io_sampler.uniform_draws`). The function returns a dict of
    tensors (see `UnifiedIO.generate`).
    """

    def run(tables, text_ids, images, image_masks, uniforms):
        if tables is None:
            tables = compute_output_tables(model.backbone)
        if sampler.strategy == "beam":
            return beam_search(
                model.backbone,
                tables,
                text_ids,
                images,
                image_masks,
                sampler.num_beams,
                text_length,
            )
        return decode(
            model.backbone,
            model.vqgan,
            tables,
            text_ids,
            images,
            image_masks,
            uniforms,
            sampler,
            text_length,
            image_length,
            stop_at_eos,
        )

    function = compile_for_backend(model, run)

    def generate(*args):
        return function(output_tables(), *args)

    return generate


def compute_output_tables(backbone):
    """Both phases' output matrices, (text, image), for the decode loop.

    Sliced and laid out once before the loop (`ModalityLogits.output_table`;
    inside it XLA may copy the slice at every step). Given the embedding
    layer rather than its table, `output_table` reads an int8-quantized
    embedding's values and scales (a `QuantizedTable`).
    """
    b = backbone
    return tuple(
        b.modality_logits.output_table(b.token_embedding, image_mode)
        for image_mode in (False, True)
    )


class OutputTables:
    """The decode loop's output matrices, kept between `generate` calls on JAX.

    `output_table` copies the embedding rows of a phase into the layout
    the loop's matrix-vector products read fastest. Done inside every
    `generate` call it cost ~25 ms of a 0.47 s text b1 call of `uio_small`
    (slice and transpose of a 68 MB table; XLA:CPU copies at a few GB/s).
    On JAX an array never changes, so the tables are computed once per
    embedding value (compared by identity) and passed to the compiled
    loop; new weights (training, `set_weights`, loading) give new values
    and new tables. The cost is memory: the two tables together are as
    large as the embedding (102 MB for `uio_small`).

    Calling it returns the tables, or `None` where the loop computes them
    itself: TensorFlow and PyTorch (variables change in place, so an
    identity says nothing) and an int8-quantized embedding (a quarter of
    the bytes to copy, and its quantizer is not an array).
    """

    def __init__(self, model):
        self.model = model
        self._variables = None  # ids of the model's variables when compiled
        self._compute = None
        self._values = ()  # weak references to the embedding values read
        self._tables = None

    def __call__(self):
        embedding = self.model.backbone.token_embedding
        if keras.config.backend() != "jax" or is_int8(embedding):
            return None
        variables = tuple(id(v) for v in self.model.variables)
        if variables != self._variables:
            backbone = self.model.backbone
            self._compute = compile_for_backend(
                self.model, lambda: compute_output_tables(backbone)
            )
            self._variables, self._values = variables, ()
        values = [v.value for v in embedding.variables]
        read = [ref() for ref in self._values]
        if len(read) != len(values) or any(a is not b for a, b in zip(read, values)):
            self._tables = None  # free the old tables before computing new ones
            self._tables = self._compute()
            self._values = [weakref.ref(v) for v in values]
        return self._tables


def encode(backbone, text_ids, images, image_masks):
    """The encoder; text alone when `images` is None (no patch at all)."""
    if images is None:
        return backbone.encode_text(text_ids)
    return backbone.encode(text_ids, images, image_masks)


def decode(
    backbone,
    vqgan,
    tables,
    text_ids,
    images,
    image_masks,
    uniforms,
    sampler,
    text_length,
    image_length,
    stop_at_eos,
):
    """Text (greedy or sampled), then `image_length` image codes and pixels."""
    b = backbone
    encoded, encoder_mask = encode(b, text_ids, images, image_masks)
    batch = ops.shape(text_ids)[0]
    total = text_length + image_length
    static = _loop_constants(
        b, tables, encoded, encoder_mask, text_length, image_length
    )
    state = (
        ops.convert_to_tensor(0, "int32"),
        ops.zeros((batch, 1), "int32"),  # the token fed at step t
        _empty_caches(b, batch, total, encoded.dtype),
        ops.zeros((batch, total), "float32"),  # valid keys
        ops.zeros((batch,), "bool"),  # an EOS has been fed
        ops.zeros((batch,), "bool"),  # an EOS has been written
        ops.zeros((batch, total), "int32"),  # written tokens
        ops.zeros((batch,), "float32"),  # summed log-probs
    )
    phase = (static, sampler, uniforms, stop_at_eos)
    state = _phase(b, state, text_length, False, *phase)
    if image_length:
        # Images start at their own positions whatever text was skipped.
        start = ops.full((batch, 1), b.image_start_id, "int32")
        state = (ops.convert_to_tensor(text_length, "int32"), start) + tuple(state[2:])
        state = _phase(b, state, total, True, *phase)
    sequence, scores = state[6], state[7]
    outputs = {"text_tokens": sequence[:, :text_length], "scores": scores}
    if image_length:
        codes = sequence[:, text_length:] - b.vocabulary_size
        outputs["image_tokens"] = codes
        decoded = vqgan.decode(codes)
        outputs["image"] = ops.clip((ops.cast(decoded, "float32") + 1) / 2, 0, 1)
    return outputs


def beam_search(
    backbone, tables, text_ids, images, image_masks, num_beams, text_length
):
    """Beam search over text (length penalty 0, as the original's alpha 0)."""
    b = backbone
    encoded, encoder_mask = encode(b, text_ids, images, image_masks)
    batch = ops.shape(text_ids)[0]
    flat = batch * num_beams
    encoded = ops.repeat(encoded, num_beams, axis=0)
    encoder_mask = ops.repeat(encoder_mask, num_beams, axis=0)
    static = _loop_constants(b, tables, encoded, encoder_mask, text_length, 0)
    vocab = b.vocabulary_size
    eos_id = Vocabulary.eos_id
    # Only the first beam is live at the start, so beams never duplicate.
    first = ops.convert_to_tensor([0.0] + [MASKED] * (num_beams - 1))
    state = (
        ops.convert_to_tensor(0, "int32"),
        ops.zeros((flat, 1), "int32"),
        _empty_caches(b, flat, text_length, encoded.dtype),
        ops.zeros((flat, text_length), "float32"),
        ops.zeros((flat,), "bool"),
        ops.zeros((flat,), "bool"),
        ops.zeros((flat, text_length), "int32"),
        ops.tile(first, (batch,)),
    )

    def cond(t, *_):
        return t < text_length

    def body(t, tokens, caches, key_mask, fed_eos, ended, sequence, scores):
        fed_eos = ops.logical_or(fed_eos, tokens[:, 0] == eos_id)
        key_mask = ops.slice_update(
            key_mask, (0, t), ops.cast(ops.logical_not(fed_eos), "float32")[:, None]
        )
        logits, caches = _step(b, t, tokens, caches, key_mask, static, False)
        log_probs = ops.log_softmax(logits, axis=-1)
        # A finished beam extends only with padding, at no cost.
        pad_only = ops.where(ops.arange(vocab) == 0, 0.0, MASKED)
        log_probs = ops.where(ended[:, None], pad_only[None], log_probs)
        total = ops.reshape(scores[:, None] + log_probs, (batch, num_beams * vocab))
        scores, picked = ops.top_k(total, num_beams)
        parent = picked // vocab + ops.arange(batch)[:, None] * num_beams
        parent = ops.reshape(parent, (-1,))
        next_tokens = ops.cast(ops.reshape(picked % vocab, (-1,)), "int32")

        def gather(x):
            return ops.take(x, parent, axis=0)

        caches = [gather(c) for c in caches]
        key_mask, fed_eos = gather(key_mask), gather(fed_eos)
        ended = ops.logical_or(gather(ended), next_tokens == eos_id)
        sequence = ops.slice_update(gather(sequence), (0, t), next_tokens[:, None])
        return (
            t + 1,
            next_tokens[:, None],
            caches,
            key_mask,
            fed_eos,
            ended,
            sequence,
            ops.reshape(scores, (-1,)),
        )

    state = ops.while_loop(cond, body, state, maximum_iterations=text_length)
    sequence = ops.reshape(state[6], (batch, num_beams, text_length))
    scores = ops.reshape(state[7], (batch, num_beams))
    return {
        "text_tokens": sequence[:, 0],
        "scores": scores[:, 0],
        "beam_tokens": sequence,
        "beam_scores": scores,
    }


def _empty_caches(backbone, batch, length, dtype):
    """Zeroed self-attention caches `[B, 2, heads, length, head_dim]`."""
    b = backbone
    shape = (batch, 2, b.num_heads, length, b.head_dim)
    return [ops.zeros(shape, dtype=dtype) for _ in b.decoder_layers]


def _loop_constants(backbone, tables, encoded, encoder_mask, text_length, image_length):
    """Everything the decode loop needs that does not change per step;
    `tables` are `compute_output_tables`' (text, image)."""
    b = backbone
    positions = b.decoder_embedding.positions(text_length, image_length)
    position_bias = b.decoder_attention_bias.position_bias(
        positions, text_length, image_length
    )
    cross_caches = [
        layer.cross_attention.project_key_value(encoded) for layer in b.decoder_layers
    ]
    query_mask = ops.ones((ops.shape(encoded)[0], 1), "int32")
    cross_bias = padding_bias(query_mask, encoder_mask)
    return positions, position_bias, cross_caches, cross_bias, tables


def _step(backbone, t, tokens, caches, key_mask, static, image_phase):
    """One cached decoder step.

    Returns float32 logits over the phase's own ids only (text and
    location ids, or image codes), and the updated caches.
    """
    b = backbone
    positions, position_bias, cross_caches, cross_bias, tables = static
    x = b.token_embedding(tokens)
    position = ops.slice(positions, (0, t, 0), (1, 1, b.hidden_dim))
    segment = ops.full((1,), 1 if image_phase else 0, "int32")
    x = b.decoder_embedding.embed(x, position, segment)
    length = ops.shape(key_mask)[1]
    row = ops.slice(position_bias, (0, 0, t, 0), (1, b.num_heads, 1, length))
    causal = ops.cast(ops.arange(length) <= t, "float32")
    allowed = key_mask[:, None, None, :] * causal
    bias = row + (1.0 - allowed) * MASKED
    new_caches = []
    for layer, cache, cross_cache in zip(b.decoder_layers, caches, cross_caches):
        x, cache = layer(
            x,
            None,
            bias,
            cross_bias,
            self_cache=cache,
            cross_cache=cross_cache,
            cache_update_index=t,
        )
        new_caches.append(cache)
    hidden = b.decoder_norm(x)[:, 0]
    return b.modality_logits.logits(hidden, tables[int(image_phase)]), new_caches


def _phase(backbone, state, stop, image_phase, static, sampler, uniforms, stop_at_eos):
    """Decodes positions `state[0]` ... `stop - 1` of one modality."""
    offset = backbone.vocabulary_size if image_phase else 0
    eos_id = Vocabulary.eos_id

    def cond(t, *_):
        return t < stop

    def body(t, tokens, caches, key_mask, fed_eos, ended, sequence, scores):
        if image_phase:
            valid = ops.ones_like(fed_eos)
        else:
            fed_eos = ops.logical_or(fed_eos, tokens[:, 0] == eos_id)
            valid = ops.logical_not(fed_eos)
        key_mask = ops.slice_update(
            key_mask, (0, t), ops.cast(valid, "float32")[:, None]
        )
        logits, caches = _step(
            backbone, t, tokens, caches, key_mask, static, image_phase
        )
        uniform = ops.take(uniforms, t, axis=1)
        next_tokens, log_probs = sampler.select(logits, not image_phase, uniform)
        next_tokens = next_tokens + offset
        t_next = t + 1
        if stop_at_eos and not image_phase:
            live = ops.logical_not(ended)
            next_tokens = ops.where(live, next_tokens, 0)
            log_probs = ops.where(live, log_probs, 0.0)
            ended = ops.logical_or(ended, next_tokens == eos_id)
            t_next = ops.where(ops.all(ended), stop, t_next)
        sequence = ops.slice_update(sequence, (0, t), next_tokens[:, None])
        return (
            ops.cast(t_next, "int32"),
            next_tokens[:, None],
            caches,
            key_mask,
            fed_eos,
            ended,
            sequence,
            scores + log_probs,
        )

    return ops.while_loop(cond, body, state, maximum_iterations=stop)


def split_batch(*arrays):
    """`generate`'s inputs split along the active distribution's batch axis.

    Under a `keras.distribution` (JAX, one process) each data-parallel
    replica then decodes its own rows instead of every replica decoding the
    whole batch. Unchanged without a distribution, when the batch does not
    divide the batch axis, and across processes (where every process passes
    the same whole batch and reads the whole result).
    """
    distribution = keras.distribution.distribution()
    if distribution is None or keras.config.backend() != "jax":
        return arrays
    import jax

    mesh = distribution.device_mesh
    size = mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)]
    if jax.process_count() > 1 or size == 1 or len(arrays[0]) % size:
        return arrays
    return tuple(
        a
        if a is None
        else keras.distribution.distribute_tensor(
            a, distribution.get_data_layout(a.shape)
        )
        for a in arrays
    )
