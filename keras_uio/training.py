"""The paper's optimiser and learning-rate schedule.

Example:

```python
from keras_uio.training import paper_optimizer
optimizer = paper_optimizer()  # Adafactor, 1e-2 for 10k steps then 1/sqrt(k)
```
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_uio")
class InverseSquareRootSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`peak` for `warmup_steps` steps, then `peak * sqrt(warmup_steps / k)`.

    With `peak = 1e-2` and `warmup_steps = 10000` this is T5's `1 /
    sqrt(max(k, 10000))`, the schedule the paper trained Unified-IO with.

    Example:

    ```python
    schedule = InverseSquareRootSchedule()
    float(schedule(40000))  # 0.005
    ```
    """

    def __init__(self, peak=1e-2, warmup_steps=10000):
        if peak <= 0 or warmup_steps <= 0:
            raise ValueError(
                "`peak` and `warmup_steps` must be positive; received "
                f"{peak} and {warmup_steps}."
            )
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32"), float(self.warmup_steps))
        return self.peak * ops.sqrt(self.warmup_steps / step)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="keras_uio")
class Adafactor(keras.optimizers.Adafactor):
    """Keras' Adafactor without a full-size second moment per matrix.

    `keras.optimizers.Adafactor` keeps the factored row and column
    statistics of every matrix and also a `velocity` variable the size of
    the weight, which it overwrites with their outer product each step.
    This subclass forms that product inside the step and stores only the
    factors, as the Adafactor paper intends; updates are the same. For
    `uio_small` that is 285 MB less optimiser state (and the same again
    for the state written back by every step). Vectors keep their
    unfactored second moment as in the parent. Arguments are those of
    `keras.optimizers.Adafactor`.

    Example:

    ```python
    import numpy as np
    import keras
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(Adafactor(learning_rate=1e-2), "mse")
    model.fit(np.ones((8, 4)), np.zeros((8, 2)), verbose=0)
    ```
    """

    def build(self, var_list):
        if self.built:
            return
        # The base optimiser's build (iterations, learning rate), not the
        # parent's, which would allocate the full-size velocities.
        super(keras.optimizers.Adafactor, self).build(var_list)
        self._r, self._c, self._v = [], [], []
        for variable in var_list:
            row = column = velocity = None
            if self._overwrite_variable_with_gradient(variable):
                pass
            elif len(variable.shape) < 2:
                velocity = self.add_variable_from_reference(
                    reference_variable=variable, name="velocity"
                )
            else:
                shape = tuple(variable.shape)
                row = self.add_variable(
                    shape=shape[:-1], dtype=variable.dtype, name=f"{variable.name}_row"
                )
                column = self.add_variable(
                    shape=shape[:-2] + shape[-1:],
                    dtype=variable.dtype,
                    name=f"{variable.name}_column",
                )
            self._r.append(row)
            self._c.append(column)
            self._v.append(velocity)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self._v[index] is not None:  # a vector: the parent's update
            return super().update_step(gradient, variable, learning_rate)
        row, column = self._r[index], self._c[index]
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        learning_rate = ops.cast(learning_rate, dtype)
        if not callable(self._learning_rate) and self.relative_step:
            learning_rate = ops.minimum(learning_rate, 1 / ops.sqrt(step))
        step_size = ops.minimum(learning_rate, 1 / ops.sqrt(step))
        scale = ops.maximum(ops.cast(self.epsilon_2, dtype), _rms(variable))
        squared = ops.square(ops.cast(gradient, dtype)) + ops.cast(
            self.epsilon_1, dtype
        )
        decay = 1 - ops.power(step, ops.cast(self.beta_2_decay, dtype))
        new_row = decay * row + (1 - decay) * ops.mean(squared, axis=-1)
        new_column = decay * column + (1 - decay) * ops.mean(squared, axis=-2)
        self.assign(row, new_row)
        self.assign(column, new_column)
        second_moment = ops.expand_dims(
            new_row / ops.mean(new_row, axis=-1, keepdims=True), -1
        ) * ops.expand_dims(new_column, -2)
        update = ops.cast(gradient, dtype) / ops.sqrt(second_moment)
        update = update / ops.maximum(1.0, _rms(update) / self.clip_threshold)
        self.assign_sub(variable, scale * step_size * update)


def _rms(x):
    return ops.sqrt(ops.mean(ops.square(x)))


def paper_optimizer(peak=1e-2, warmup_steps=10000, clipnorm=1.0):
    """Adafactor as in the paper (section 3.3/3.4).

    Constant `peak` learning rate for `warmup_steps`, then `1 / sqrt(k)`
    decay; second-moment decay `beta2 = 1 - k^-0.8`
    (`beta_2_decay=-0.8`); global-norm clipping at 1.0; no momentum (the
    paper's beta1 0.9 is not part of Keras' factored Adafactor; the
    optimiser is `keras_uio.training.Adafactor`, which stores only the
    factored second moments). Any Keras
    optimiser works with `UnifiedIO.compile` too.
    """
    return Adafactor(
        learning_rate=InverseSquareRootSchedule(peak, warmup_steps),
        beta_2_decay=-0.8,
        global_clipnorm=clipnorm,
    )
