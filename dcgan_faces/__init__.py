"""dcgan_faces: train a DCGAN that makes faces, with Keras 3 on TensorFlow."""

__version__ = "0.2.0"
