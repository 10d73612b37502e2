"""Checks shared by the models' `get_layout_map`."""

import keras


def check_device_mesh(device_mesh, *axis_names):
    """Raises `ValueError` unless `device_mesh` is a Keras `DeviceMesh`
    with every one of `axis_names`.

    Example:
    >>> import keras
    >>> mesh = keras.distribution.DeviceMesh((1,), ["batch"], keras.distribution.list_devices()[:1])
    >>> check_device_mesh(mesh, "batch")
    >>> check_device_mesh(mesh, "batch", "model")
    Traceback (most recent call last):
    ...
    ValueError: Mesh axis 'model' is not in the device mesh's axis names ['batch'].
    """
    if not isinstance(device_mesh, keras.distribution.DeviceMesh):
        raise ValueError(
            "`device_mesh` must be a `keras.distribution.DeviceMesh`; "
            f"received {type(device_mesh).__name__}."
        )
    for name in axis_names:
        if name not in device_mesh.axis_names:
            raise ValueError(
                f"Mesh axis {name!r} is not in the device mesh's axis "
                f"names {list(device_mesh.axis_names)}."
            )
