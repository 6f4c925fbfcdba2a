"""resformer-video: ResFormer-style divided space-time video transformers for action recognition."""

from setuptools import find_packages, setup

setup(
    name="resformer_video",
    version="0.1.0",
    description="ResFormer-style divided space-time video transformers (multi-resolution training, "
                "any test resolution) for action recognition",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["resformer_video", "resformer_video.*"]),
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "timm>=0.9",
        "fvcore>=0.1.5",
        "yacs>=0.1.8",
        "iopath>=0.1.9",
        "av>=10.0",
        "decord>=0.6.0; platform_machine == 'x86_64'",
        "einops>=0.6",
        "numpy",
        "tqdm",
        "tensorboard>=2.10",
        "matplotlib>=3.5",
    ],
    extras_require={
        "torchcodec": ["torchcodec>=0.2"],
        "export": ["onnx>=1.14", "onnxscript", "onnxruntime>=1.16"],
        "dev": ["pytest>=7", "torchcodec>=0.2", "onnx>=1.14", "onnxscript", "onnxruntime>=1.16"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
