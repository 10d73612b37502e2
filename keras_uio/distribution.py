"""Data and model parallelism with `keras.distribution` (JAX).

(Over 600 lines on purpose: the set-ups and the layout check share their
mesh helpers, and one module keeps `keras_uio.distribution` the single
import users need.)

Unified-IO runs sharded without any change to the model code: a
`keras.distribution.Distribution` set before the model is built decides
where each variable lives, and JAX (GSPMD) partitions every computation -
`fit`, `evaluate`, `generate` - to match (`generate` also splits its batch
over the data-parallel replicas). This module holds the common set-ups:

- `data_parallel()`: every device holds a full copy of the weights and a
  slice of each batch (`keras.distribution.DataParallel`).
- `model_parallel(n)`: a 2-D `("batch", "model")` mesh of `devices / n`
  by `n` devices and the layout of `UnifiedIOBackbone.get_layout_map` and
  `VQGAN.get_layout_map`; each variable's layout is checked as the variable
  is created, before its value is allocated.
- `check_layout(...)`: the layout every variable of a model, a config or a
  preset would get, checked against the mesh without building anything.
- `initialize_multi_host(...)`: `jax.distributed.initialize` for runs over
  several hosts, plus a random seed that agrees across processes.

Typical use (any number of devices, including one):

```python
import keras
import keras_uio
from keras_uio import distribution as uio_distribution

devices = keras.distribution.list_devices()
# e.g. model_parallel=4 on 8 accelerators: 2 copies of the model, each
# split over 4 devices. Here: one copy over all devices.
distribution = uio_distribution.model_parallel(model_parallel=len(devices))
with distribution.scope():  # or keras.distribution.set_distribution(...)
    model = keras_uio.UnifiedIO.from_preset("uio_tiny_easyvqa")  # loads sharded
    model.compile(optimizer=keras.optimizers.Adafactor(1e-3))
```

Then `model.fit(dataset)` (in the scope), with a global batch size
divisible by the `"batch"` axis.

Preset loading creates each variable already sharded and reads the weights
file one variable at a time into its shards, so no device ever holds the
whole model.
"""

import json
import os
import re
import warnings

import keras

BATCH = "batch"
MODEL = "model"
ON_INDIVISIBLE = ("raise", "replicate")


def _devices(devices):
    devices = list(devices) if devices is not None else None
    if devices is None:
        devices = keras.distribution.list_devices()
    if not devices:
        raise ValueError("No devices to distribute over (`devices` is empty).")
    return devices


def data_parallel(devices=None, auto_shard_dataset=True):
    """Data parallelism over all (or the given) devices.

    Every device holds all weights; batches are split along their first
    axis, so the global batch size must be a multiple of the device count.

    Args:
        devices: optional list of device names (`"cpu:0"`, `"gpu:1"`, ...
            as returned by `keras.distribution.list_devices()`); default
            all devices.
        auto_shard_dataset: passed to `keras.distribution.DataParallel`
            (multi-host: whether Keras shards a `tf.data` input per host).

    Returns:
        A `keras.distribution.DataParallel`.
    """
    return keras.distribution.DataParallel(
        devices=_devices(devices), auto_shard_dataset=auto_shard_dataset
    )


def device_mesh(
    model_parallel=None, devices=None, batch_dim_name=BATCH, model_dim_name=MODEL
):
    """A 2-D `(devices / model_parallel, model_parallel)` device mesh.

    Args:
        model_parallel: int. Devices per model replica (the size of the
            model axis); default all devices (one replica).
        devices: optional list of device names; default all devices.
        batch_dim_name, model_dim_name: the axis names.

    Returns:
        A `keras.distribution.DeviceMesh` with axes `(batch_dim_name,
        model_dim_name)`.
    """
    devices = _devices(devices)
    count = len(devices)
    if model_parallel is None:
        model_parallel = count
    if (
        isinstance(model_parallel, bool)
        or not isinstance(model_parallel, int)
        or model_parallel < 1
        or count % model_parallel
    ):
        raise ValueError(
            "`model_parallel` must be a positive int that divides the number "
            f"of devices ({count}); received {model_parallel!r}."
        )
    return keras.distribution.DeviceMesh(
        shape=(count // model_parallel, model_parallel),
        axis_names=(batch_dim_name, model_dim_name),
        devices=devices,
    )


def get_layout_map(
    mesh, backbone_cls=None, vqgan_cls=None, model_dim_name=MODEL, batch_dim_name=BATCH
):
    """The layout rules of the backbone and the VQ-GAN in one `LayoutMap`.

    Args:
        mesh: a `keras.distribution.DeviceMesh` with both axis names.
        backbone_cls: a class with `get_layout_map` (default
            `UnifiedIOBackbone`), or `False` to replicate the backbone.
        vqgan_cls: likewise for the VQ-GAN (default `VQGAN`); `False`
            replicates it.
        model_dim_name, batch_dim_name: the mesh axes.

    Returns:
        A `keras.distribution.LayoutMap`. A variable matched by rules of
        both classes makes `LayoutMap` raise when it is looked up.
    """
    from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
    from keras_uio.models.vqgan.vqgan import VQGAN

    classes = [
        UnifiedIOBackbone if backbone_cls is None else backbone_cls,
        VQGAN if vqgan_cls is None else vqgan_cls,
    ]
    merged = keras.distribution.LayoutMap(mesh)
    for cls in classes:
        if cls is False:
            continue
        rules = cls.get_layout_map(
            mesh,
            model_parallel_dim_name=model_dim_name,
            data_parallel_dim_name=batch_dim_name,
        )
        for pattern in rules:
            merged[pattern] = rules[pattern]
    return merged


def _axis_size(mesh, axis):
    names = axis if isinstance(axis, (tuple, list)) else (axis,)
    size = 1
    for name in names:
        if name not in mesh.axis_names:
            raise ValueError(
                f"Mesh axis {name!r} is not in the device mesh's axis names "
                f"{list(mesh.axis_names)}."
            )
        size *= mesh.shape[list(mesh.axis_names).index(name)]
    return size


def _layout_error(path, shape, axes, mesh):
    """Why `axes` cannot shard a variable of `shape`, or None."""
    shape = tuple(int(d) for d in shape)
    mesh_text = dict(zip(mesh.axis_names, (int(s) for s in mesh.shape)))
    if len(axes) != len(shape):
        return (
            f"Cannot shard variable '{path}' of shape {shape}: its layout "
            f"{tuple(axes)} has {len(axes)} axes for {len(shape)} dimensions "
            f"(mesh {mesh_text})."
        )
    for index, (dim, axis) in enumerate(zip(shape, axes)):
        if axis is None:
            continue
        size = _axis_size(mesh, axis)
        if dim % size:
            return (
                f"Cannot shard variable '{path}' of shape {shape} with layout "
                f"{tuple(axes)}: dimension {index} ({dim}) is not divisible "
                f"by the size of mesh axis {axis!r} ({size}; mesh "
                f"{mesh_text}). Use a {axis!r} axis size that divides {dim}, "
                "change the model size, or pass `on_indivisible='replicate'` "
                "to replicate such variables."
            )
    return None


def _resolve(path, shape, axes, mesh, on_indivisible):
    """`(axes, note)`: the checked layout of one variable."""
    problem = _layout_error(path, shape, axes, mesh)
    if problem is None:
        return tuple(axes), None
    if on_indivisible == "replicate" and len(axes) == len(shape):
        return (None,) * len(shape), problem
    raise ValueError(problem)


def _check_on_indivisible(on_indivisible):
    if on_indivisible not in ON_INDIVISIBLE:
        raise ValueError(
            f"`on_indivisible` must be one of {ON_INDIVISIBLE}; received "
            f"{on_indivisible!r}."
        )


class CheckedModelParallel(keras.distribution.ModelParallel):
    """`keras.distribution.ModelParallel` that checks each variable's layout.

    When a variable is created under this distribution its layout is looked
    up in the `LayoutMap` and checked against the variable's shape before
    any value is allocated. A dimension that its mesh axis does not divide
    raises a `ValueError` naming the variable, its shape and the axis size
    (`on_indivisible="raise"`), or replicates that variable with a warning
    (`on_indivisible="replicate"`). Otherwise it behaves exactly as
    `ModelParallel`. Build it with `model_parallel()`.

    Args:
        layout_map: a `keras.distribution.LayoutMap`.
        batch_dim_name: the mesh axis that splits batches.
        on_indivisible: `"raise"` or `"replicate"`.
        auto_shard_dataset: as for `ModelParallel`.
    """

    def __init__(
        self,
        *,
        layout_map,
        batch_dim_name=BATCH,
        on_indivisible="raise",
        auto_shard_dataset=True,
    ):
        _check_on_indivisible(on_indivisible)
        super().__init__(
            layout_map=layout_map,
            batch_dim_name=batch_dim_name,
            auto_shard_dataset=auto_shard_dataset,
        )
        self.on_indivisible = on_indivisible

    def get_variable_layout(self, variable):
        layout = super().get_variable_layout(variable)
        if not isinstance(layout, keras.distribution.TensorLayout):
            return layout  # a backend sharding set by hand: left alone
        axes = tuple(layout.axes)
        checked, note = _resolve(
            variable.path,
            variable.shape,
            axes,
            self.device_mesh,
            self.on_indivisible,
        )
        if note is None:
            return layout
        warnings.warn(note + " Replicating it.", stacklevel=2)
        return keras.distribution.TensorLayout(checked, self.device_mesh)


def model_parallel(
    model_parallel=None,
    devices=None,
    *,
    backbone_cls=None,
    vqgan_cls=None,
    layout_map=None,
    on_indivisible="raise",
    batch_dim_name=BATCH,
    model_dim_name=MODEL,
    auto_shard_dataset=True,
):
    """Model (and data) parallelism on a 2-D `("batch", "model")` mesh.

    `model_parallel` devices hold one copy of the model, split by the
    layout rules (heads, MLP width, vocabulary and VQ-GAN channels on the
    model axis; hidden dimension on the batch axis); the `devices /
    model_parallel` copies each take a slice of the batch.

    Args:
        model_parallel: int. Size of the model axis; must divide the number
            of devices. Default: all devices (one model copy).
        devices: optional list of device names; default all devices.
        backbone_cls, vqgan_cls: classes whose `get_layout_map` rules are
            used (defaults `UnifiedIOBackbone`, `VQGAN`); `False` leaves
            that part replicated.
        layout_map: a ready `LayoutMap` on a mesh of your own (then
            `model_parallel`, `devices`, the classes and the axis names are
            not used, except `batch_dim_name`).
        on_indivisible: `"raise"` (default): a variable dimension that its
            mesh axis does not divide raises a `ValueError` naming the
            variable, its shape and the axis size, before the variable is
            allocated. `"replicate"`: such variables are replicated instead
            (with a warning).
        batch_dim_name, model_dim_name: the mesh axis names.
        auto_shard_dataset: as for `keras.distribution.ModelParallel`.

    Returns:
        A `CheckedModelParallel` (a `keras.distribution.ModelParallel`):
        use it with `keras.distribution.set_distribution(...)` or `with
        distribution.scope():` around building or loading the model and
        around `fit` / `generate`.
    """
    if layout_map is None:
        mesh = device_mesh(
            model_parallel,
            devices,
            batch_dim_name=batch_dim_name,
            model_dim_name=model_dim_name,
        )
        layout_map = get_layout_map(
            mesh,
            backbone_cls=backbone_cls,
            vqgan_cls=vqgan_cls,
            model_dim_name=model_dim_name,
            batch_dim_name=batch_dim_name,
        )
    return CheckedModelParallel(
        layout_map=layout_map,
        batch_dim_name=batch_dim_name,
        on_indivisible=on_indivisible,
        auto_shard_dataset=auto_shard_dataset,
    )


# --- checking without building ----------------------------------------------


def _abstract_variables(cls, config):
    """`[(path, shape)]` of `cls(**config)`, built without allocating."""
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"
    pending = list(global_state.get_global_attribute(key, None) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = cls(**config)
            variables = [(v.path, tuple(v.shape)) for v in model.weights]
    finally:
        # Drop the abstract variables: nothing must ever initialize them.
        global_state.set_global_attribute(key, pending)
    return variables


def _preset_parts(preset):
    """`[(class, config, path prefix)]` for a preset name or folder."""
    from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
    from keras_uio.models.unified_io.unified_io_preset_loading import (
        bundled_preset_path,
    )
    from keras_uio.models.unified_io.unified_io_preset_loading import is_architecture
    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
    from keras_uio.models.vqgan.vqgan import VQGAN
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets as vq

    classes = {"UnifiedIOBackbone": UnifiedIOBackbone, "VQGAN": VQGAN}
    if is_architecture(preset):
        entry = unified_io_presets[preset]
        vq_name = entry["metadata"]["vqgan"]
        return [
            (UnifiedIOBackbone, entry["config"]),
            (VQGAN, vq[vq_name]["config"]),
        ]
    if preset in vq:
        return [(VQGAN, vq[preset]["config"])]
    preset = bundled_preset_path(preset)
    parts = []
    for folder in (preset, os.path.join(preset, "vqgan")):
        config_file = os.path.join(folder, "config.json")
        if not os.path.exists(config_file):
            continue
        with open(config_file) as f:
            saved = json.load(f)
        name = saved.get("class_name", "")
        if name not in classes:
            raise ValueError(
                f"`{config_file}` describes a {name!r}; expected one of "
                f"{sorted(classes)}."
            )
        parts.append((classes[name], saved["config"]))
    if not parts:
        raise ValueError(
            f"{preset!r} is neither a built-in preset nor a folder with a "
            "`config.json`."
        )
    return parts


def _variables_of(model_or_config, model_cls):
    if isinstance(model_or_config, keras.layers.Layer):
        return [(v.path, tuple(v.shape)) for v in model_or_config.weights]
    if isinstance(model_or_config, dict):
        if model_cls is None:
            from keras_uio.models.unified_io.unified_io_backbone import (
                UnifiedIOBackbone,
            )

            model_cls = UnifiedIOBackbone
        config = {
            k: v for k, v in model_or_config.items() if k not in ("name", "trainable")
        }
        return _abstract_variables(model_cls, config)
    if isinstance(model_or_config, (str, os.PathLike)):
        variables = []
        for cls, config in _preset_parts(os.fspath(model_or_config)):
            config = {k: v for k, v in config.items() if k not in ("name", "trainable")}
            variables += _abstract_variables(cls, config)
        return variables
    raise ValueError(
        "`model_or_config` must be a Keras model or layer, a config dict or "
        f"a preset name or folder; received {type(model_or_config).__name__}."
    )


def check_layout(model_or_config, layout_map, model_cls=None, on_indivisible=None):
    """The layout each variable gets, checked against the mesh.

    Nothing is allocated for a config or a preset: the model is built
    abstractly (variables with shapes but no values), so the check is cheap
    even for XL. Run it before building or loading a model on many devices.

    Args:
        model_or_config: a built model or layer (e.g. `UnifiedIO`,
            `UnifiedIOBackbone`, `VQGAN`), a constructor config dict (for
            `model_cls`, default `UnifiedIOBackbone`), or a preset: a
            built-in name (`"uio_xl"`: backbone and its VQ-GAN) or a folder
            (its `config.json`, and `vqgan/config.json` when present).
        layout_map: a `keras.distribution.LayoutMap`, or a distribution
            that has one (e.g. from `model_parallel()`).
        model_cls: the class a config dict is for.
        on_indivisible: `"raise"` or `"replicate"` (as in
            `model_parallel`); default: the distribution's own setting, or
            `"raise"`.

    Returns:
        A list of dicts, one per variable in model order: `path`, `shape`,
        `layout` (tuple of mesh axis names or `None` per dimension), `rule`
        (the matching `LayoutMap` key, `None` when replicated by default)
        and `note` (why a rule was replaced by replication, or `None`).

    Raises:
        ValueError: naming the variable, its shape and the mesh axis size,
            when a dimension is not divisible by its axis (and
            `on_indivisible="raise"`), or when a path matches several rules.
    """
    if isinstance(layout_map, keras.distribution.ModelParallel):
        if on_indivisible is None:
            on_indivisible = getattr(layout_map, "on_indivisible", None)
        layout_map = getattr(layout_map, "_layout_map", None)
    on_indivisible = on_indivisible or "raise"
    if not isinstance(layout_map, keras.distribution.LayoutMap):
        raise ValueError(
            "`layout_map` must be a `keras.distribution.LayoutMap` or a "
            f"`ModelParallel` distribution; received {type(layout_map).__name__}."
        )
    _check_on_indivisible(on_indivisible)
    mesh = layout_map.device_mesh
    rows = []
    for path, shape in _variables_of(model_or_config, model_cls):
        # (`path in layout_map` is always true: `LayoutMap` returns None.)
        if path in list(layout_map):
            rule = path
        else:
            matches = [pattern for pattern in layout_map if re.fullmatch(pattern, path)]
            if len(matches) > 1:
                raise ValueError(
                    f"Variable '{path}' of shape {shape} matches several "
                    f"layout rules: {matches}."
                )
            rule = matches[0] if matches else None
        if rule is None:
            axes, note = (None,) * len(shape), None
        else:
            axes, note = _resolve(
                path, shape, tuple(layout_map[rule].axes), mesh, on_indivisible
            )
        rows.append(
            {"path": path, "shape": shape, "layout": axes, "rule": rule, "note": note}
        )
    return rows


def format_layout(rows):
    """`check_layout`'s rows as an aligned text table (one line each)."""
    lines = []
    width = max((len(r["path"]) for r in rows), default=0)
    for r in rows:
        layout = "replicated" if not any(r["layout"]) else str(r["layout"])
        lines.append(f"{r['path']:<{width}}  {str(r['shape']):<16} {layout}")
    return "\n".join(lines)


# --- multi-host --------------------------------------------------------------


def initialize_multi_host(
    coordinator_address=None,
    num_processes=None,
    process_id=None,
    local_device_ids=None,
    seed=None,
    **jax_kwargs,
):
    """Joins this process to a multi-host JAX run.

    Call it first thing in every process (before any JAX computation and
    before building a model), with the same arguments except `process_id`.
    It runs `jax.distributed.initialize`; afterwards
    `keras.distribution.list_devices()` lists the devices of all hosts, and
    `data_parallel()` / `model_parallel()` build meshes over all of them
    (the model axis is the fast-varying one of JAX's global device order
    `jax.devices()`; keep it within a host where you can: check
    `device.process_index`).
    On Cloud TPU, and under SLURM or Open MPI, JAX finds every argument
    itself: call it without any.

    All processes must build the same initial weights, so the random seed
    is made to agree: `seed` if given (`keras.utils.set_random_seed`),
    otherwise one drawn on process 0 and shared (as
    `keras.distribution.initialize` does). Each process feeds its own
    slice of every global batch (`auto_shard_dataset` shards a `tf.data`
    input by process).

    Args:
        coordinator_address: `"host:port"` of process 0, reachable from
            every process.
        num_processes: int. Number of processes.
        process_id: int in `[0, num_processes)`. This process's rank.
        local_device_ids: optional list of the local device ids this
            process uses.
        seed: optional int; see above.
        **jax_kwargs: other `jax.distributed.initialize` arguments
            (`initialization_timeout`, ...).

    Returns:
        `(process_index, process_count)`.

    Example (two GPU hosts, the coordinator on 10.0.0.1):

    ```python
    # not run: needs a second host (process 1) and the coordinator 10.0.0.1
    # on host 0 (use process_id=1 on host 1)
    from keras_uio import distribution
    distribution.initialize_multi_host("10.0.0.1:1234", num_processes=2, process_id=0)
    keras.distribution.set_distribution(distribution.model_parallel(4))
    ```
    """
    if keras.config.backend() != "jax":
        raise ValueError(
            "`initialize_multi_host` runs on the JAX backend; the Keras "
            f"backend is {keras.config.backend()!r} (set KERAS_BACKEND=jax)."
        )
    if coordinator_address is not None:
        host, _, port = str(coordinator_address).rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                "`coordinator_address` must be 'host:port' (e.g. "
                f"'10.0.0.1:1234'); received {coordinator_address!r}."
            )
    if num_processes is not None and (
        isinstance(num_processes, bool)
        or not isinstance(num_processes, int)
        or num_processes < 1
    ):
        raise ValueError(
            f"`num_processes` must be a positive int; received {num_processes!r}."
        )
    if process_id is not None:
        if isinstance(process_id, bool) or not isinstance(process_id, int):
            raise ValueError(f"`process_id` must be an int; received {process_id!r}.")
        if num_processes is None:
            raise ValueError("`process_id` needs `num_processes` as well.")
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"`process_id` must be in [0, {num_processes}); received {process_id}."
            )
    if num_processes is not None and num_processes > 1:
        if coordinator_address is None:
            raise ValueError(
                "`num_processes` > 1 needs `coordinator_address` (the "
                "'host:port' of process 0) unless JAX can detect the "
                "cluster (then pass none of the three)."
            )
        if process_id is None:
            raise ValueError("`num_processes` > 1 needs this process's `process_id`.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an int; received {seed!r}.")

    import jax

    kwargs = dict(jax_kwargs)
    if local_device_ids is not None:
        kwargs["local_device_ids"] = list(local_device_ids)
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            **kwargs,
        )
    except RuntimeError as error:
        raise RuntimeError(
            "jax.distributed.initialize failed. Call `initialize_multi_host` "
            "once per process, before any JAX computation (also before "
            f"building a model or listing devices). JAX said: {error}"
        ) from error
    if seed is not None:
        keras.utils.set_random_seed(seed)
    else:
        from keras.src.backend.jax.distribution_lib import initialize_rng

        initialize_rng()
    return jax.process_index(), jax.process_count()
