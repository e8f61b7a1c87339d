"""Packaging for dcgan_faces.

TensorFlow is an extra, not a plain requirement: the CPU wheel (`tensorflow-cpu`) and the GPU-capable one
(`tensorflow`) provide the same module and must not both be installed. Colab already has `tensorflow`.
`tensorflow-cpu` has no wheel for macOS: there `[cpu]` is `tensorflow`, which is the CPU build on a Mac.
"""

from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / "dcgan_faces" / "__init__.py").read_text(), version)

metrics = ["opencv-python-headless>=4.8,<4.13"]  # 4.13+/5.x no longer ship the Haar cascade files
media = ["imageio>=2.30", "imageio-ffmpeg>=0.4"]  # MP4 movies; GIFs need only Pillow

setup(
    name="dcgan_faces",
    version=version["__version__"],
    description="Train a DCGAN that makes faces, with Keras 3 on TensorFlow: one command from a folder of photos.",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dcgan_faces", "dcgan_faces.*"]),
    python_requires=">=3.10",
    install_requires=["keras>=3.0", "numpy>=1.24", "pillow>=10.0", "tqdm>=4.60", "gdown>=5.0", "matplotlib>=3.7"],
    entry_points={"console_scripts": ["dcgan-faces=dcgan_faces.cli:main"]},
    extras_require={
        "cpu": ['tensorflow-cpu>=2.16; sys_platform != "darwin"', 'tensorflow>=2.16; sys_platform == "darwin"'],
        "gpu": ["tensorflow>=2.16"],
        "metrics": metrics,
        "media": media,
        "test": ["pytest>=7", "hypothesis>=6", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6", "ruff>=0.4",
                 *metrics, *media],
    },
)
