"""Image converter for Unified-IO (encoder images and VQ-GAN targets)."""

import keras
import numpy as np
from keras_hub.layers import ImageConverter

from keras_uio.host_arrays import to_numpy
from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
from keras_uio.preprocessing import images as image_ops

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None


def in_tf_graph():
    """Whether this runs inside a `tf.function` or `tf.data` map."""
    return tf is not None and not tf.executing_eagerly()


def _to_numpy(x):
    """A tensor (any backend, any device) as NumPy; anything else as is."""
    if keras.ops.is_tensor(x) or hasattr(x, "numpy"):
        return to_numpy(x)
    return x


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIOImageConverter(ImageConverter):
    """Resize-with-pad and normalise images the way Unified-IO does.

    Each image is scaled so that its longest side is `image_size` (int
    truncation, antialiased bilinear), padded at the bottom/right with zeros
    and then normalised: with the ImageNet mean/std for the encoder
    (`target=False`, padding becomes `-mean/std`), or to `[-1, 1]` for the
    VQ-GAN (`target=True`, padding becomes -1). Matches the original
    `uio/utils.py` to float rounding.

    Calling the layer returns the images. `convert()` also returns the patch
    masks and removes inpainting regions. Input: one image `[H, W, C]`, a
    batch `[B, H, W, C]`, or a list of images of different sizes; uint8
    (0..255) or float (0..1); RGB, grayscale or RGBA. Works eagerly and in
    `tf.data` (through `tf.numpy_function`).

    Args:
        image_size: int or `(size, size)`. 384 for the encoder, 256 for
            targets.
        patch_size: int. Patch size of the mask (16).
        target: bool. Produce VQ-GAN targets in [-1, 1] instead of
            normalised encoder images.
        mean, std: per-channel normalisation (encoder only).

    Example:
    >>> converter = UnifiedIOImageConverter(image_size=384)
    >>> image = np.random.randint(0, 256, (480, 640, 3), dtype="uint8")
    >>> out = converter.convert(image, mask_regions=[100, 50, 300, 200])
    >>> out["images"].shape, out["patch_masks"].shape
    ((384, 384, 3), (576,))
    """

    backbone_cls = UnifiedIOBackbone

    def __init__(
        self,
        image_size=image_ops.ENCODER_IMAGE_SIZE,
        patch_size=image_ops.PATCH_SIZE,
        target=False,
        mean=image_ops.IMAGENET_MEAN,
        std=image_ops.IMAGENET_STD,
        **kwargs,
    ):
        if isinstance(image_size, (list, tuple)):
            if len(image_size) != 2 or image_size[0] != image_size[1]:
                raise ValueError(
                    "`image_size` must be an int or a square `(size, size)`. "
                    f"Received: image_size={image_size}"
                )
            image_size = image_size[0]
        if not isinstance(image_size, (int, np.integer)) or image_size < 1:
            raise ValueError(
                f"`image_size` must be a positive int. Received: {image_size!r}"
            )
        if image_size % patch_size:
            raise ValueError(
                "`image_size` must be a multiple of `patch_size`. Received: "
                f"image_size={image_size}, patch_size={patch_size}"
            )
        for key in (
            "scale",
            "offset",
            "interpolation",
            "antialias",
            "crop_to_aspect_ratio",
            "pad_to_aspect_ratio",
            "bounding_box_format",
        ):
            kwargs.pop(key, None)
        super().__init__(
            image_size=(int(image_size), int(image_size)),
            crop_to_aspect_ratio=False,
            pad_to_aspect_ratio=False,
            interpolation="bilinear",
            antialias=True,
            **kwargs,
        )
        self.patch_size = int(patch_size)
        self.target = bool(target)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    @property
    def num_patches(self):
        return (self.image_size[0] // self.patch_size) ** 2

    # ---------------------------------------------------------------- numpy
    def _convert_one(self, image, region):
        size = self.image_size[0]
        if self.target:
            if region is not None:
                raise ValueError("`mask_regions` is not supported for target images.")
            return image_ops.preprocess_target_image(
                image, size=size, patch_size=self.patch_size
            )
        return image_ops.preprocess_image(
            image,
            mask_region=region,
            size=size,
            patch_size=self.patch_size,
            mean=self.mean,
            std=self.std,
        )

    def _convert_numpy(self, images, mask_regions=None):
        images = _to_numpy(images)
        if mask_regions is not None:
            mask_regions = _to_numpy(mask_regions)
        is_list = isinstance(images, (list, tuple))
        if not is_list:
            images = (
                image_ops.pil_to_array(images)
                if image_ops.is_pil_image(images)
                else np.asarray(images)
            )
        batched = is_list or images.ndim == 4
        if not batched:
            images = [images]
            mask_regions = None if mask_regions is None else [mask_regions]
        if mask_regions is not None and len(mask_regions) != len(images):
            raise ValueError(
                "`mask_regions` must have one box per image. Received "
                f"{len(mask_regions)} boxes for {len(images)} images"
            )
        outs = [
            self._convert_one(image, None if mask_regions is None else mask_regions[i])
            for i, image in enumerate(images)
        ]
        pixels = np.stack([o[0] for o in outs]).astype(np.float32)
        masks = np.stack([o[1] for o in outs]).astype(np.int32)
        if not batched:
            pixels, masks = pixels[0], masks[0]
        return pixels, masks

    # ------------------------------------------------------------------ tf
    def _convert_tf(self, images, mask_regions=None):
        images = tf.convert_to_tensor(images)
        rank = images.shape.rank
        if rank not in (2, 3, 4):
            raise ValueError(
                "`images` must be [H, W], [H, W, C] or [B, H, W, C]. "
                f"Received shape: {images.shape}"
            )
        if rank == 2:
            images = images[..., None]
        has_region = mask_regions is not None
        args = [images]
        if has_region:
            args.append(tf.cast(mask_regions, tf.float64))

        def fn(*arrays):
            return self._convert_numpy(arrays[0], arrays[1] if has_region else None)

        pixels, masks = tf.numpy_function(
            fn, args, (tf.float32, tf.int32), stateful=False
        )
        size = self.image_size[0]
        batch = [images.shape[0]] if images.shape.rank == 4 else []
        pixels = tf.ensure_shape(pixels, batch + [size, size, 3])
        masks = tf.ensure_shape(masks, batch + [self.num_patches])
        return pixels, masks

    # ----------------------------------------------------------------- API
    def convert(self, images, mask_regions=None):
        """Images -> `{"images": ..., "patch_masks": ...}`.

        Args:
            images: one image, a batch or a list of images.
            mask_regions: optional `(x1, y1, x2, y2)` per image (original
                pixels) whose patches are removed from the mask.
        """
        if in_tf_graph():
            pixels, masks = self._convert_tf(images, mask_regions)
        else:
            pixels, masks = self._convert_numpy(images, mask_regions)
        return {"images": pixels, "patch_masks": masks}

    def call(self, inputs):
        return self.convert(inputs)["images"]

    def undo(self, image, original_size, interpolation="nearest"):
        """Map an output image `[S, S, C]` in [0, 1] back to `original_size`."""
        return image_ops.undo_image_preprocessing(
            _to_numpy(image), original_size, interpolation=interpolation
        )

    def compute_output_spec(self, inputs):
        size = self.image_size[0]
        shape = tuple(inputs.shape[:-3]) + (size, size, 3)
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        for key in (
            "scale",
            "offset",
            "interpolation",
            "antialias",
            "crop_to_aspect_ratio",
            "pad_to_aspect_ratio",
            "bounding_box_format",
        ):
            config.pop(key, None)
        config.update(
            {
                "image_size": self.image_size[0],
                "patch_size": self.patch_size,
                "target": self.target,
                "mean": list(self.mean),
                "std": list(self.std),
            }
        )
        return config
