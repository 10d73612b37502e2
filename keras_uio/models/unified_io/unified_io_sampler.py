import numpy as np
from keras import ops

from keras_uio.layers.attention_bias import MASKED

STRATEGIES = ("greedy", "beam", "top_k", "top_p", "random")


def uniform_draws(seed, batch, length):
    """The uniforms `[batch, length]` a sampled decode reads, one per step.

    Drawn on the host with NumPy from `seed` (`None` is 0), so one seed
    gives the same tokens on JAX, TensorFlow and PyTorch, and row `i`'s
    draws do not depend on the batch size.
    """
    if seed is None:
        seed = 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an int >= 0 or None; received {seed!r}.")
    rng = np.random.default_rng(int(seed))
    return rng.random((batch, length), dtype="float32")


def categorical(logits, uniform):
    """One id per row of `logits [B, N]` by inverse transform sampling:
    the first id whose cumulative probability exceeds `uniform [B]`
    (in [0, 1)) times the row's total.

    Returns:
        int `[B]` tensor.
    """
    cumulative = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
    uniform = ops.convert_to_tensor(uniform, cumulative.dtype)
    target = ops.expand_dims(uniform, -1) * cumulative[:, -1:]
    ids = ops.sum(ops.cast(cumulative <= target, "int32"), axis=-1)
    return ops.minimum(ids, ops.shape(logits)[-1] - 1)


class UnifiedIOSampler:
    """Picks the next token inside `UnifiedIO.generate`'s compiled loop.

    keras_hub's samplers own the decoding loop; Unified-IO's loop switches
    from text to image mid-sequence, so token selection is a plain function
    of the step's logits instead.

    Args:
        strategy: `"greedy"` (argmax), `"random"` (temperature sampling),
            `"top_k"` or `"top_p"` (nucleus) sampling.
        vocabulary_size: int. Text + location ids (image ids follow).
        total_size: int. All ids.
        allowed_ids: optional iterable of ids that text positions may use
            (image positions always use image ids). EOS (1) is added.
        k: int, for `"top_k"`.
        p: float, for `"top_p"` (0.9 in the original).
        temperature: float, divides the logits before sampling.
        num_beams: int, for `"beam"` (the search itself runs in
            `UnifiedIO.generate`).

    `select` gets the logits of one modality: text and location ids
    (`[B, vocabulary_size]`) or image codes (`[B, total_size -
    vocabulary_size]`). Scores are log-probabilities under those
    (allowed-id-masked) logits, before temperature and top-k/top-p
    filtering; they equal the log-probabilities under the original's
    modality-masked full logits.

    Example:

    ```python
    import numpy as np
    sampler = UnifiedIOSampler("greedy", vocabulary_size=4, total_size=6,
                               allowed_ids=[2])
    logits = np.array([[0.0, 1.0, 2.0, 5.0]], "float32")
    tokens, log_probs = sampler.select(logits, True, None)
    int(tokens[0])  # 2: id 3 is not allowed
    ```
    """

    def __init__(
        self,
        strategy="greedy",
        vocabulary_size=33152,
        total_size=49536,
        allowed_ids=None,
        k=5,
        p=0.9,
        temperature=1.0,
        num_beams=4,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(
                f"`sampler` must be one of {STRATEGIES}; received {strategy!r}."
            )
        if not temperature > 0:  # also rejects nan
            raise ValueError(f"`temperature` must be > 0; received {temperature}.")
        if not 0 < p <= 1:
            raise ValueError(f"`p` must be in (0, 1]; received {p}.")
        if num_beams < 1:
            raise ValueError(f"`num_beams` must be >= 1; received {num_beams}.")
        self.num_beams = int(num_beams)
        if not k >= 1:
            raise ValueError(f"`k` must be >= 1; received {k}.")
        self.strategy = strategy
        self.vocabulary_size = vocabulary_size
        self.total_size = total_size
        self.k, self.p, self.temperature = int(k), float(p), float(temperature)
        self.allowed = None
        if allowed_ids is not None:
            ids = np.asarray(list(allowed_ids) + [1], "int64")
            if ids.min() < 0 or ids.max() >= vocabulary_size:
                raise ValueError(
                    f"`allowed_ids` must be text/location ids in [0, "
                    f"{vocabulary_size}); received [{ids.min()}, {ids.max()}]."
                )
            self.allowed = np.zeros(total_size, bool)
            self.allowed[ids] = True

    def cache_key(self):
        allowed = None if self.allowed is None else self.allowed.tobytes()
        return (
            self.strategy,
            self.k,
            self.p,
            self.temperature,
            self.num_beams,
            allowed,
        )

    def _filter(self, logits):
        logits = logits / self.temperature
        if self.strategy == "top_k":
            kth = ops.top_k(logits, self.k)[0][:, -1:]
            logits = ops.where(logits < kth, MASKED, logits)
        elif self.strategy == "top_p":
            ordered = ops.flip(ops.sort(logits, axis=-1), axis=-1)
            cumulative = ops.cumsum(ops.softmax(ordered, axis=-1), axis=-1)
            cutoff = ops.sum(ops.cast(cumulative < self.p, "int32"), axis=-1)
            cutoff = ops.minimum(cutoff, ops.shape(logits)[-1] - 1)
            threshold = ops.take_along_axis(ordered, cutoff[:, None], axis=-1)
            logits = ops.where(logits < threshold, MASKED, logits)
        return logits

    def select(self, logits, is_text, uniform):
        """`(tokens [B] int32, log_probs [B])` for one modality.

        `is_text` (a Python bool) says whether `logits` are the text ids;
        `uniform [B]` is the step's draw from `uniform_draws` (unused when
        greedy); returned tokens index `logits` (image codes without the
        offset).
        """
        logits = ops.cast(logits, "float32")
        if self.allowed is not None and is_text:
            allowed = self.allowed[: self.vocabulary_size]
            logits = ops.where(np.logical_not(allowed)[None], MASKED, logits)
        log_probs = ops.log_softmax(logits, axis=-1)
        if self.strategy == "greedy":
            tokens = ops.argmax(logits, axis=-1)
        else:
            tokens = categorical(self._filter(logits), uniform)
        tokens = ops.cast(tokens, "int32")
        picked = ops.take_along_axis(log_probs, tokens[:, None], axis=-1)[:, 0]
        return tokens, picked
