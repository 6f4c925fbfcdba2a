"""resformer-video: ResFormer-style divided space-time video transformers for action recognition."""

from setuptools import find_packages, setup

# Console scripts, all -> resformer_video.cli:main, which runs the tool cli.ENTRY_POINTS names.
CONSOLE_SCRIPTS = (
    "resformer-train",
    "resformer-predict",
    "resformer-export",
    "resformer-check-videos",
    "resformer-model-info",
    "resformer-make-synthetic",
    "resformer-extract-features",
    "resformer-prepare-kinetics",
)

setup(
    name="resformer_video",
    version="0.1.0",
    description="ResFormer-style divided space-time video transformers (multi-resolution training, "
    "any test resolution) for action recognition",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    license="Apache-2.0",
    license_files=["LICENSE"],
    # tools/ is installed as resformer_video.tools so the console scripts work without the repo.
    packages=find_packages(include=["resformer_video", "resformer_video.*"]) + ["resformer_video.tools"],
    package_dir={"resformer_video.tools": "tools"},
    package_data={"resformer_video": ["data/*.txt", "data/*.json"]},
    include_package_data=True,
    entry_points={"console_scripts": [f"{name} = resformer_video.cli:main" for name in CONSOLE_SCRIPTS]},
    # Every third-party package imported by resformer_video/ and tools/ (decord, torchcodec and
    # PyAV through DATA.DECODER; tensorboard through torch.utils.tensorboard).
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "timm>=0.9",
        "safetensors>=0.4",
        "fvcore>=0.1.5",
        "yacs>=0.1.8",
        "av>=10.0",
        "decord>=0.6.0; platform_machine == 'x86_64'",
        "einops>=0.6",
        "numpy",
        "tensorboard>=2.10",
        "matplotlib>=3.5",
        "pillow>=9.2",
        "pyyaml>=5.1",
    ],
    extras_require={
        "torchcodec": ["torchcodec>=0.2"],
        "export": ["onnx>=1.14", "onnxscript", "onnxruntime>=1.16"],
        "dev": ["pytest>=7", "ruff>=0.6", "torchcodec>=0.2", "onnx>=1.14", "onnxscript", "onnxruntime>=1.16"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
