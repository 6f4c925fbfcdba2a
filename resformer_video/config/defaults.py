"""Every configuration key of resformer-video, with its default and a one-line comment.

A config is built with :func:`get_cfg_defaults`, then a YAML file and ``KEY VALUE`` overrides are
merged into it by :func:`resformer_video.config.load_config`, which also validates it. Unknown keys
and values of the wrong type are rejected by yacs; values outside their allowed set or range are
rejected by :func:`resformer_video.config.validate_config`. Both errors name the key.
"""

from yacs.config import CfgNode

from resformer_video.datasets.decoders import DEFAULT_DECODERS
from resformer_video.datasets.synthetic import GENERATOR_DEFAULTS

_C = CfgNode()

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
# Where logs, stats, TensorBoard events, checkpoints and test results are written.
_C.OUTPUT_DIR = "./output"
# Seed for Python, NumPy and torch RNGs (each rank and data worker derives its own from it).
_C.RNG_SEED = 0
# GPUs of this node: 0 runs on CPU; N > 1 under plain python starts N processes, one per GPU (as
# torchrun --standalone --nproc_per_node N would). Under torchrun each process uses one GPU.
_C.NUM_GPUS = 1
# Distributed backend: "" picks nccl on GPU and gloo on CPU; or "nccl" / "gloo" explicitly.
_C.DIST_BACKEND = ""
# Minutes a collective may wait for the slowest process before the job fails. The multi-view test
# gathers results only at its end, so shards that decode at different speeds need a long wait.
_C.DIST_TIMEOUT_MIN = 60
# Log training progress every this many iterations.
_C.LOG_PERIOD = 10

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Architecture: a name of the table in models/archs.py (resformer_nano ... resformer_base; widths,
# heads and blocks there, and in docs/ARCHITECTURE.md).
_C.MODEL.ARCH = "resformer_base"
# Number of output classes.
_C.MODEL.NUM_CLASSES = 400
# Override the architecture's depth (0 keeps the architecture's 12 blocks); for small demos.
_C.MODEL.DEPTH = 0
# Patch size in pixels (square); every input H and W must be divisible by it.
_C.MODEL.PATCH_SIZE = 16
# Space-time attention: divided_space_time, joint_space_time or space_only.
_C.MODEL.ATTENTION_TYPE = "divided_space_time"
# Positional embedding: global_local (ResFormer GPE + LPE), global (GPE only), learned, none.
_C.MODEL.POS_EMBED = "global_local"
# Temporal embedding: learned (a table of DATA.NUM_FRAMES, as in TimeSformer) or none (positions
# spatial only; divided attention is then blind to frame order: reversed clips give the same logits).
_C.MODEL.TEMPORAL_EMBED = "learned"
# Start of the learned temporal table when not loaded from MODEL.PRETRAINED: sincos (the sine-cosine
# code of the frame index; training from scratch needs a non-zero start to learn frame order) or
# zeros (TimeSformer's; image checkpoints always start it at zeros). docs/RESULTS.md says why.
_C.MODEL.TEMPORAL_EMBED_INIT = "sincos"
# Stochastic depth rate of the last block (linearly increasing from 0).
_C.MODEL.DROP_PATH_RATE = 0.1
# Dropout before the classifier head.
_C.MODEL.DROPOUT = 0.0
# Recompute each block's activations in the backward pass to save memory.
_C.MODEL.GRAD_CHECKPOINT = False
# Path to weights to start from (timm/DeiT ViT, ResFormer image, TimeSformer, or ours); "" for none,
# "none" to train from scratch on purpose (what TRAIN.REQUIRE_PRETRAINED asks for).
_C.MODEL.PRETRAINED = ""
# Attention kernel: sdpa (torch scaled_dot_product_attention) or explicit (softmax(QK^T)V, for benchmarks).
_C.MODEL.ATTN_IMPL = "sdpa"
# Spatial attention: msa (standard multi-head) or emsa (ResT efficient multi-head attention). For
# high resolutions choose emsa with HEAD_CONV and INSTANCE_NORM False (fused kernel; docs/PERFORMANCE.md).
_C.MODEL.SPATIAL_ATTENTION = "msa"

_C.MODEL.EMSA = CfgNode()
# Spatial reduction ratio s of keys and values (1 = no reduction).
_C.MODEL.EMSA.SR_RATIO = 2
# Mix heads with a 1x1 convolution over the attention logits before the softmax (needs the maps:
# no fused kernel; with INSTANCE_NORM also False, EMSA runs on MODEL.ATTN_IMPL's kernel).
_C.MODEL.EMSA.HEAD_CONV = True
# Instance-normalise each head's attention map after the softmax.
_C.MODEL.EMSA.INSTANCE_NORM = True

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
_C.DATA = CfgNode()
# Folder with train.csv, val.csv, test.csv (csv layout) or the root of class folders (folders layout).
_C.DATA.PATH_TO_DATA_DIR = ""
# Prefix joined to every relative video path in the lists.
_C.DATA.PATH_PREFIX = ""
# Dataset layout: csv (Kinetics lists) or folders (root/<split>/<class>/<video>, or root/<class>/<video>
# split per class by DATA.FOLDER_SPLIT).
_C.DATA.LAYOUT = "csv"
# Folders layout without train/val/test folders: each class's videos are split with a fixed seed
# into these train/val/test fractions (disjoint, the same on every run; the sizes are logged).
_C.DATA.FOLDER_SPLIT = [0.8, 0.1, 0.1]
# Class-names file (JSON {"name": id} or one name per line); "" looks for classnames.json /
# classes.txt in PATH_TO_DATA_DIR.
_C.DATA.CLASS_NAMES_FILE = ""
# Video decoder: decord, torchcodec, pyav or torchcodec_cuda (NVDEC on the GPU; a file it cannot
# read goes to CPU torchcodec, then to DECODER_FALLBACK).
_C.DATA.DECODER = DEFAULT_DECODERS[0]
# Backend tried when DATA.DECODER cannot open or decode a video (decord has no AV1 decoder, for
# one): "" (none), "decord", "torchcodec" or "pyav". A video fails only when both fail.
_C.DATA.DECODER_FALLBACK = DEFAULT_DECODERS[1]
# Training samples per decode (repeated sampling, PySlowFast NUM_REPEATED_SAMPLES / DeiT repeated
# augmentation): one decode gives this many clips at different temporal offsets within two clip spans,
# each augmented independently. TRAIN.BATCH_SIZE (samples) must be a multiple of it; an epoch keeps its
# samples and iterations and decodes 1/N of the videos, each video once every N epochs. 1 = off.
_C.DATA.NUM_REPEATED_SAMPLES = 1
# Frames per clip.
_C.DATA.NUM_FRAMES = 8
# Distance between sampled frames, in frames of TARGET_FPS video.
_C.DATA.SAMPLING_RATE = 32
# Frame rate the sampling rate refers to; videos at other rates are sampled by time.
_C.DATA.TARGET_FPS = 30
# Short-side scale range for training scale jitter, [min, max] pixels, for the largest crop size;
# a smaller crop size s of DATA.TRAIN_CROP_SIZES jitters in s / TRAIN_CROP_SIZES[0] * [min, max].
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Training crop: jitter (short-side jitter then random crop) or random_resized_crop.
_C.DATA.TRAIN_CROP_MODE = "jitter"
# Training clips: default (uniform random start, frame positions rounded; jitter size drawn as an
# integer, antialiased resize, crop anywhere) or timesformer (TimeSformer's PyAV decoder: random
# start uniform(0, delta), frames from the first one at or after its timestamp; PySlowFast's jitter:
# short side int(round(uniform(min, max))), bilinear resize without antialiasing after
# normalising, crop offset randint(0, side - size)). timesformer needs TRAIN_CROP_MODE jitter, no
# AUG.RAND_AUGMENT and TRAIN_JITTER_SCALES[0] >= TRAIN_CROP_SIZES[0] (it crops without padding).
_C.DATA.TRAIN_SAMPLING = "default"
# Area range of random_resized_crop, as fractions of the frame.
_C.DATA.TRAIN_RRC_AREA = [0.08, 1.0]
# Training crop sizes, largest first; more than one gives multi-resolution replicated clips.
_C.DATA.TRAIN_CROP_SIZES = [224]
# Test short-side size and crop size (a multiple of MODEL.PATCH_SIZE, at most 1024).
_C.DATA.TEST_CROP_SIZE = 224
# Per-channel mean for normalisation (of pixel values in [0, 1]).
_C.DATA.MEAN = [0.45, 0.45, 0.45]
# Per-channel standard deviation for normalisation.
_C.DATA.STD = [0.225, 0.225, 0.225]
# Random horizontal flip in training.
_C.DATA.RANDOM_FLIP = True
# A training video that fails to decode is replaced by a random other one, at most this many times.
_C.DATA.MAX_DECODE_RETRIES = 10
# Stop with an error once more than this fraction of the videos tried have failed (after 20 tries).
_C.DATA.MAX_FAILURE_FRACTION = 0.5

# ---------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------
_C.AUG = CfgNode()
# RandAugment in training, with the same parameters on every frame of a clip.
_C.AUG.RAND_AUGMENT = False
# Number of RandAugment operations per clip.
_C.AUG.RA_NUM_OPS = 2
# RandAugment magnitude (out of 10, as in timm's rand-m9-mstd0.5).
_C.AUG.RA_MAGNITUDE = 9
# Standard deviation of the per-clip magnitude noise.
_C.AUG.RA_MAGNITUDE_STD = 0.5

# ---------------------------------------------------------------------------------------------
# Data loader
# ---------------------------------------------------------------------------------------------
_C.DATA_LOADER = CfgNode()
# Worker processes per data loader (0 decodes in the main process).
_C.DATA_LOADER.NUM_WORKERS = 4
# Pin host memory for faster copies to the GPU.
_C.DATA_LOADER.PIN_MEMORY = True
# Keep workers alive between epochs.
_C.DATA_LOADER.PERSISTENT_WORKERS = True

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
_C.TRAIN = CfgNode()
# Run training.
_C.TRAIN.ENABLE = True
# Clips per process per forward (micro-batch).
_C.TRAIN.BATCH_SIZE = 8
# Clips per optimiser step over all processes; 0 means BATCH_SIZE x world size (no accumulation).
_C.TRAIN.GLOBAL_BATCH_SIZE = 0
# Evaluate clip-level accuracy on the val split every this many epochs (0 disables).
_C.TRAIN.EVAL_PERIOD = 1
# Write a checkpoint every this many epochs (and always at the end).
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Continue from the latest valid checkpoint in OUTPUT_DIR/checkpoints (an epoch's, or the mid-epoch
# one a SIGTERM or Ctrl-C wrote). The checkpoint's config must equal this one in every key that changes
# the result; free to differ: OUTPUT_DIR, LOG_PERIOD, DATA_LOADER.*, TENSORBOARD.*, TEST.*,
# TRAIN.ENABLE / AUTO_RESUME / RESUME_ALLOWED_CHANGES / EVAL_PERIOD / CHECKPOINT_PERIOD / COMPILE /
# BACKWARD_PER_RESOLUTION / PRECISION_FALLBACK, SOLVER.MAX_EPOCH (train longer; with the cosine
# policy the rest of the schedule follows the new length), NUM_GPUS, DIST_*, MODEL.GRAD_CHECKPOINT,
# MODEL.ATTN_IMPL, DATA.DECODER, DATA.DECODER_FALLBACK (RESUME_FREE_KEYS in config/compare.py).
# Any other difference stops the run naming the keys.
_C.TRAIN.AUTO_RESUME = True
# More keys (or whole sections, e.g. "SOLVER") allowed to differ from the resumed checkpoint's
# config, e.g. ["SOLVER.BASE_LR"] to continue a run with another learning rate on purpose.
_C.TRAIN.RESUME_ALLOWED_CHANGES = []
# Backward after each resolution's forward instead of once (less memory, same gradients).
_C.TRAIN.BACKWARD_PER_RESOLUTION = False
# Label smoothing of the cross-entropy.
_C.TRAIN.LABEL_SMOOTHING = 0.0
# Precision of training, validation and testing: fp32, bf16 (autocast; a GPU with bf16 or a CPU
# with native bf16: AVX512-BF16 or AMX) or fp16 (autocast + gradient scaler; CUDA only). "none" is
# accepted as the old name of fp32.
_C.TRAIN.MIXED_PRECISION = "fp32"
# Where TRAIN.MIXED_PRECISION bf16 cannot run natively, run fp32 (with a warning) instead of stopping.
_C.TRAIN.PRECISION_FALLBACK = False
# Compile the model with torch.compile.
_C.TRAIN.COMPILE = False
# Training stops at start-up unless MODEL.PRETRAINED is set (a file, or "none" to train from scratch on
# purpose): set by the Kinetics-400 configs, whose recipe fine-tunes from ImageNet weights.
_C.TRAIN.REQUIRE_PRETRAINED = False

# ---------------------------------------------------------------------------------------------
# Scale-consistency loss between resolutions
# ---------------------------------------------------------------------------------------------
_C.SCALE_CONSISTENCY = CfgNode()
# Weight w of the scale-consistency loss (0 disables it).
_C.SCALE_CONSISTENCY.WEIGHT = 1.0
# What is compared: cls_token (final-norm class token) or logits.
_C.SCALE_CONSISTENCY.TARGET = "cls_token"
# Distance: l2 (mean squared error), smooth_l1 or kl (on softmaxed logits).
_C.SCALE_CONSISTENCY.LOSS = "l2"

# ---------------------------------------------------------------------------------------------
# Optimiser and schedule
# ---------------------------------------------------------------------------------------------
_C.SOLVER = CfgNode()
# Optimiser: sgd (momentum) or adamw.
_C.SOLVER.OPTIMIZING_METHOD = "sgd"
# Base learning rate (for GLOBAL_BATCH_SIZE; not rescaled automatically).
_C.SOLVER.BASE_LR = 0.005
# Learning-rate policy: steps_with_relative_lrs or cosine.
_C.SOLVER.LR_POLICY = "steps_with_relative_lrs"
# Epochs at which each step of LRS starts.
_C.SOLVER.STEPS = [0, 11, 14]
# Learning-rate multipliers of BASE_LR, one per step.
_C.SOLVER.LRS = [1.0, 0.1, 0.01]
# Number of training epochs.
_C.SOLVER.MAX_EPOCH = 15
# SGD momentum.
_C.SOLVER.MOMENTUM = 0.9
# Nesterov momentum.
_C.SOLVER.NESTEROV = True
# Weight decay (which parameters get it: SOLVER.ZERO_WD_1D_PARAM).
_C.SOLVER.WEIGHT_DECAY = 1e-4
# True: no weight decay on norms, biases, position / class / temporal embeddings and the GPE/LPE convs
# (timm's param_groups_weight_decay, PySlowFast's ZERO_WD_1D_PARAM), the usual choice when training
# from scratch (demo, study). False: TimeSformer's rule, decay on every parameter whose name lacks
# "bn" - in this model all of them; the Kinetics-400 configs use it (docs/TRAINING.md).
_C.SOLVER.ZERO_WD_1D_PARAM = True
# Linear warm-up length in epochs (0 disables).
_C.SOLVER.WARMUP_EPOCHS = 0.0
# Learning rate at the start of warm-up.
_C.SOLVER.WARMUP_START_LR = 0.0
# Clip the gradient norm to this value (0 disables).
_C.SOLVER.CLIP_GRAD_NORM = 0.0

# ---------------------------------------------------------------------------------------------
# Testing
# ---------------------------------------------------------------------------------------------
_C.TEST = CfgNode()
# Run multi-view testing after training (or alone).
_C.TEST.ENABLE = True
# Split file to test on: test or val.
_C.TEST.SPLIT = "test"
# Clips per process per forward in testing.
_C.TEST.BATCH_SIZE = 8
# Temporal clips per video.
_C.TEST.NUM_ENSEMBLE_VIEWS = 1
# Spatial crops per clip: 1 (centre) or 3 (along the long side).
_C.TEST.NUM_SPATIAL_CROPS = 3
# Checkpoint to test; "" uses the last one in OUTPUT_DIR/checkpoints.
_C.TEST.CHECKPOINT_FILE_PATH = ""
# Test resolutions to sweep in one run (multiples of MODEL.PATCH_SIZE); [] tests at DATA.TEST_CROP_SIZE only.
_C.TEST.RESOLUTIONS = []
# Write per-video predictions into the results JSON.
_C.TEST.SAVE_PREDICTIONS = False
# Test views: default (centred clips, rounded frames, antialiased resize, softmax averaged) or
# timesformer (TimeSformer's evaluation: clip i of n starts at delta * i / n and takes the frames its
# PyAV decoder takes, its bilinear resize and crops, logits summed).
_C.TEST.PROTOCOL = "default"

# ---------------------------------------------------------------------------------------------
# Synthetic motion dataset (tools/demo.py and tools/study.py generate it into
# DATA.PATH_TO_DATA_DIR when that folder has no lists yet; see datasets/synthetic.py)
# ---------------------------------------------------------------------------------------------
_C.SYNTHETIC = CfgNode()
# Motion classes, in label order (names from datasets/synthetic.py MOTIONS); [] takes the first
# MODEL.NUM_CLASSES of MOTIONS. Their number must equal MODEL.NUM_CLASSES.
_C.SYNTHETIC.CLASSES = []
# The generator's settings below default to its own (GENERATOR_DEFAULTS in datasets/synthetic.py).
# Videos per class (split 60/20/20 into train/val/test).
_C.SYNTHETIC.VIDEOS_PER_CLASS = GENERATOR_DEFAULTS["videos_per_class"]
# Seed of the generator: content, frame rates and the split are a function of it (byte-identical files).
_C.SYNTHETIC.SEED = GENERATOR_DEFAULTS["seed"]
# Frame width and height of the generated videos, in pixels (even).
_C.SYNTHETIC.VIDEO_SIZE = GENERATOR_DEFAULTS["size"]
# Length of each video in seconds, [min, max].
_C.SYNTHETIC.DURATION = list(GENERATOR_DEFAULTS["duration"])
# Range (0-255 levels) of the random colour texture behind the moving shape (higher is harder).
_C.SYNTHETIC.BACKGROUND_CONTRAST = GENERATOR_DEFAULTS["background_contrast"]
# Sprite size as a fraction of the frame, [min, max] (a wide range makes test resolution matter).
_C.SYNTHETIC.SPRITE_SCALE = list(GENERATOR_DEFAULTS["sprite_scale"])

# ---------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------
_C.TENSORBOARD = CfgNode()
# Write TensorBoard scalars under OUTPUT_DIR/tensorboard.
_C.TENSORBOARD.ENABLE = True


def get_cfg_defaults() -> CfgNode:
    """A fresh copy of the default config (callers may mutate it freely)."""
    return _C.clone()
