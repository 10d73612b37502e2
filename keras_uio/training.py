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


def paper_optimizer(peak=1e-2, warmup_steps=10000, clipnorm=1.0):
    """Adafactor as in the paper (section 3.3/3.4).

    Constant `peak` learning rate for `warmup_steps`, then `1 / sqrt(k)`
    decay; second-moment decay `beta2 = 1 - k^-0.8`
    (`beta_2_decay=-0.8`); global-norm clipping at 1.0; no momentum (the
    paper's beta1 0.9 is not part of Keras' factored Adafactor). Any Keras
    optimiser works with `UnifiedIO.compile` too.
    """
    return keras.optimizers.Adafactor(
        learning_rate=InverseSquareRootSchedule(peak, warmup_steps),
        beta_2_decay=-0.8,
        global_clipnorm=clipnorm,
    )
