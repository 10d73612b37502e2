"""VQ-GAN image tokenizer (taming-transformers, as used by Unified-IO)."""

from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_config import count_vqgan_parameters
from keras_uio.models.vqgan.vqgan_presets import vqgan_presets
from keras_uio.models.vqgan.vqgan_trainer import CodebookRestart
from keras_uio.models.vqgan.vqgan_trainer import VQGANTrainer
from keras_uio.models.vqgan.vqgan_trainer import codebook_statistics
