"""The synthetic motion dataset: layout, determinism, motion semantics and the CLI."""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from resformer_video.datasets import MOTIONS, make_synthetic_dataset, open_video
from resformer_video.datasets.synthetic import TEXTURE_RES, _render_frame, _sample_motion, render_video

from conftest import REPO_ROOT


def _decode_all(path):
    with open_video(str(path), "pyav") as reader:
        return reader.get_frames(range(reader.num_frames)).numpy(), reader.fps


@pytest.mark.slow
def test_layout_and_lists(synthetic_data_dir):
    names = json.loads((synthetic_data_dir / "classnames.json").read_text())
    assert names == {m: i for i, m in enumerate(MOTIONS[:4])}
    counts = {}
    for split in ("train", "val", "test"):
        lines = (synthetic_data_dir / f"{split}.csv").read_text().splitlines()
        counts[split] = len(lines)
        for line in lines:
            rel, label = line.split()
            assert not rel.startswith("/") and (synthetic_data_dir / rel).is_file()
            assert rel.split("/")[1] == MOTIONS[int(label)]
    assert counts == {"train": 16, "val": 4, "test": 4}
    rates = {_decode_all(p)[1] for p in (synthetic_data_dir / "videos").rglob("*.mp4")}
    assert len(rates) >= 3  # several frame rates


def test_same_seed_same_videos_other_seed_different(tmp_path):
    kwargs = dict(num_classes=2, videos_per_class=3, size=32, duration=(0.5, 0.8))
    make_synthetic_dataset(str(tmp_path / "a"), seed=3, **kwargs)
    make_synthetic_dataset(str(tmp_path / "b"), seed=3, **kwargs)
    make_synthetic_dataset(str(tmp_path / "c"), seed=4, **kwargs)
    assert (tmp_path / "a" / "train.csv").read_text() == (tmp_path / "b" / "train.csv").read_text()
    rel = "videos/moving_left/moving_left_000.mp4"
    # Byte-identical files within one process too (the encoder options: datasets/encoding.py).
    assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    first, _ = _decode_all(tmp_path / "a" / rel)
    other, _ = _decode_all(tmp_path / "c" / rel)
    assert first.shape != other.shape or np.abs(first.astype(int) - other).mean() > 10


def test_rendered_frames_are_bit_identical_for_a_seed():
    videos = [render_video(np.random.default_rng(7), "rotating_clockwise", 32, 6, 15.0) for _ in range(2)]
    np.testing.assert_array_equal(videos[0], videos[1])
    other = render_video(np.random.default_rng(8), "rotating_clockwise", 32, 6, 15.0)
    assert np.abs(videos[0].astype(int) - other).mean() > 10


@pytest.mark.parametrize("motion", [m for m in MOTIONS if not m.startswith("scrolling_")])
def test_motion_parameters_match_the_class_and_stay_in_frame(motion):
    rng = np.random.default_rng(0)
    size, duration, base = 96, 3.0, 30.0
    for _ in range(20):
        params = _sample_motion(rng, motion, size, duration, base)
        (x0, y0, a0, s0), (x1, y1, a1, s1) = params.at(0.0), params.at(duration)
        (alpha0, tint0), (alpha1, tint1) = params.appearance(0.0), params.appearance(duration)
        expected = {
            "moving_left": x1 < x0 - 0.25 * size,
            "moving_right": x1 > x0 + 0.25 * size,
            "moving_up": y1 < y0 - 0.25 * size,
            "moving_down": y1 > y0 + 0.25 * size,
            "rotating_clockwise": a1 > a0 + np.pi / 2,
            "rotating_counterclockwise": a1 < a0 - np.pi / 2,
            "growing": s1 > 1.7 * s0,
            "shrinking": s0 > 1.7 * s1,
            "fading_in": alpha1 > alpha0 + 0.5,
            "fading_out": alpha0 > alpha1 + 0.5,
            "warming": tint1 > tint0 + 1.0,
            "cooling": tint0 > tint1 + 1.0,
        }
        assert expected[motion]
        for x, y in ((x0, y0), (x1, y1)):
            assert base / 2 - 1 <= x <= size - base / 2 + 1 and base / 2 - 1 <= y <= size - base / 2 + 1


@pytest.mark.parametrize("motion", [m for m in MOTIONS if m.startswith("scrolling_")])
def test_scrolling_moves_on_a_torus_from_anywhere(motion):
    """Scrolling starts anywhere in the frame (uniformly: no position tells the direction) and
    moves 0.3-0.55 frames per video along its direction; the drawing wraps around the edges."""
    rng = np.random.default_rng(0)
    size, duration = 96, 2.0
    starts = []
    for _ in range(200):
        params = _sample_motion(rng, motion, size, duration, 30.0)
        (x0, y0, _, _), (x1, y1, _, _) = params.at(0.0), params.at(duration)
        dx, dy = (x1 - x0) / size, (y1 - y0) / size
        along, across = {
            "scrolling_left": (-dx, dy),
            "scrolling_right": (dx, dy),
            "scrolling_up": (-dy, dx),
            "scrolling_down": (dy, dx),
        }[motion]
        assert params.wrap and 0.3 <= along <= 0.55 and across == 0
        starts.append((x0, y0))
    starts = np.array(starts) / size
    assert starts.min() >= 0 and starts.max() <= 1 and np.all(np.abs(starts.mean(0) - 0.5) < 0.06)
    frame = render_video(np.random.default_rng(1), motion, 64, 1, 10.0)[0]
    assert frame.shape == (64, 64, 3)


def test_wrapped_drawing_splits_the_shape_across_the_edges():
    background = np.zeros((32, 32, 3))
    texture = np.full((TEXTURE_RES, TEXTURE_RES, 3), 255, np.uint8)
    mask = np.ones((TEXTURE_RES, TEXTURE_RES), bool)
    noise = np.zeros_like(background)
    pose = (0.0, 16.0, 0.0, 1.0)  # centred on the left edge
    wrapped = _render_frame(background, texture, mask, 10.0, pose, noise, wrap=True)
    clipped = _render_frame(background, texture, mask, 10.0, pose, noise, wrap=False)
    assert wrapped[16, 31].max() == 255 and clipped[16, 31].max() == 0  # re-enters on the right
    assert wrapped[16, 2].max() == 255 and clipped[16, 2].max() == 255


@pytest.mark.slow
def test_first_frames_do_not_reveal_the_class(synthetic_data_dir):
    """Per-class mean first frames are alike: no class has a constant look (colour, position)."""
    means = []
    for motion in MOTIONS[:4]:
        frames = [_decode_all(p)[0][0].astype(float) for p in (synthetic_data_dir / "videos" / motion).glob("*.mp4")]
        means.append(np.mean(frames, axis=0).mean(axis=(0, 1)))
    spread = np.ptp(np.array(means), axis=0)
    assert spread.max() < 40  # per-channel mean colours differ little between classes


def test_cli_writes_a_dataset(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "make_synthetic_dataset", REPO_ROOT / "tools" / "make_synthetic_dataset.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "synth"
    tool.main(
        [str(out), "--num-classes", "2", "--videos-per-class", "3", "--size", "32", "--frames", "10", "--seed", "1"]
    )
    assert "train 2, val 2, test 2" in capsys.readouterr().out
    assert len(list((out / "videos").rglob("*.mp4"))) == 6
    with open_video(str(next((out / "videos").rglob("*.mp4"))), "decord") as reader:
        assert reader.num_frames == 10
    with pytest.raises(SystemExit, match=rf"num_classes must be in \[1, {len(MOTIONS)}\]"):
        tool.main([str(out), "--num-classes", str(len(MOTIONS) + 1)])


def test_background_contrast_controls_the_background_texture():
    """Same seed, contrast 0 vs 200: the sprite and noise are identical, and the background pixels
    (where the two differ) are flat (pixel noise only) at 0 but textured at 200."""
    from resformer_video.datasets.synthetic import render_video

    for seed in range(4):
        flat, textured = (
            render_video(np.random.default_rng(seed), "moving_left", 64, 2, 10.0, c)[0].astype(float)
            for c in (0.0, 200.0)
        )
        background = np.abs(textured - flat).max(axis=-1) > 0
        assert 0.5 < background.mean() < 1.0  # the sprite covers the rest, unchanged
        assert flat[background].std(axis=0).mean() < 20  # noise of 15-23 levels only
        assert textured[background].std(axis=0).mean() > 30
    with pytest.raises(ValueError, match="background_contrast"):
        make_synthetic_dataset("unused", background_contrast=300)


_GENERATE = """
import sys
if sys.argv[2] == "decord-first":
    import decord  # noqa: F401  (bundles its own FFmpeg)
import torch
torch.set_num_threads(int(sys.argv[3]))
from resformer_video.datasets.synthetic import make_synthetic_dataset
make_synthetic_dataset(sys.argv[1], classes=["growing", "shrinking"], videos_per_class=3,
                       seed=3, size=96, num_frames=24)
"""


def _file_digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_generator_is_byte_deterministic_across_processes(tmp_path):
    """The same seed gives byte-identical files (videos and lists) in separate processes, whatever
    the thread count, which FFmpeg build was loaded first, or what the heap held before: glibc's
    ``MALLOC_PERTURB_`` fills fresh and freed memory with a different byte in each process, so an
    encoder that reads memory it never wrote (libx264's AVX-512 mbtree code at 96 px = 6 macroblocks
    a row, see datasets/encoding.py) gives different files here."""
    runs = [
        ("a", "plain", "1", None),
        ("b", "decord-first", "2", "85"),
        ("c", "plain", "2", "170"),
        ("d", "plain", "1", "1"),
    ]
    for name, mode, threads, perturb in runs:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
        env.update({"PYTHONPATH": str(REPO_ROOT)}, **({"MALLOC_PERTURB_": perturb} if perturb else {}))
        subprocess.run(
            [sys.executable, "-c", _GENERATE, str(tmp_path / name), mode, threads], check=True, env=env, timeout=180
        )
    digests = [_file_digests(tmp_path / name) for name, *_ in runs]
    assert len(digests[0]) == 6 + 4  # 6 videos, 3 lists, classnames.json
    assert all(digest == digests[0] for digest in digests[1:])


def test_ensure_synthetic_dataset_generates_once_and_refuses_other_settings(tmp_path):
    from resformer_video.datasets import ensure_synthetic_dataset

    from conftest import make_cfg

    data = tmp_path / "data"
    opts = [
        "SYNTHETIC.CLASSES",
        ["growing", "shrinking"],
        "SYNTHETIC.VIDEOS_PER_CLASS",
        3,
        "SYNTHETIC.VIDEO_SIZE",
        32,
        "SYNTHETIC.DURATION",
        [0.2, 0.3],
        "MODEL.NUM_CLASSES",
        2,
    ]
    cfg = make_cfg(data, opts)
    assert ensure_synthetic_dataset(cfg, log=lambda _: None) is True
    assert json.loads((data / "synthetic_spec.json").read_text())["classes"] == ["growing", "shrinking"]
    assert ensure_synthetic_dataset(cfg, log=lambda _: None) is False
    with pytest.raises(ValueError, match="SYNTHETIC settings.*delete the folder"):
        ensure_synthetic_dataset(make_cfg(data, opts + ["SYNTHETIC.SEED", 1]), log=lambda _: None)
    (data / "synthetic_spec.json").unlink()
    with pytest.raises(ValueError, match="has no synthetic_spec.json"):
        ensure_synthetic_dataset(cfg, log=lambda _: None)


@pytest.mark.parametrize(
    "pair,index", [(("fading_in", "fading_out"), 0), (("warming", "cooling"), 1), (("growing", "shrinking"), 2)]
)
def test_appearance_pairs_change_one_quantity_in_opposite_directions(pair, index):
    """(opacity, tint, scale) over one second: each pair changes one of them, by a lot, in opposite
    directions, and leaves the others alone (so only the order of frames tells them apart)."""
    rng = np.random.default_rng(0)
    state = lambda m, t: np.array(m.appearance(t) + (m.at(t)[3],))
    first, second = (_sample_motion(rng, name, 64, 1.0, 20.0) for name in pair)
    deltas = [state(m, 1.0) - state(m, 0.0) for m in (first, second)]
    for delta in deltas:
        assert abs(delta[index]) > 0.3 and np.abs(np.delete(delta, index)).max() == 0
    assert deltas[0][index] * deltas[1][index] < 0


def test_the_config_node_and_the_tool_default_to_the_generator_s_settings():
    """One set of generator defaults: GENERATOR_DEFAULTS feeds the SYNTHETIC node and the tool."""
    from resformer_video.config import get_cfg_defaults
    from resformer_video.datasets.synthetic import GENERATOR_DEFAULTS

    node = get_cfg_defaults().SYNTHETIC
    assert (
        node.VIDEOS_PER_CLASS,
        node.SEED,
        node.VIDEO_SIZE,
        tuple(node.DURATION),
        node.BACKGROUND_CONTRAST,
        tuple(node.SPRITE_SCALE),
    ) == tuple(
        GENERATOR_DEFAULTS[k]
        for k in ("videos_per_class", "seed", "size", "duration", "background_contrast", "sprite_scale")
    )
    spec = importlib.util.spec_from_file_location(
        "make_synthetic_tool", REPO_ROOT / "tools" / "make_synthetic_dataset.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(["out"])
    assert (args.size, tuple(args.duration), args.background_contrast, tuple(args.sprite_scale)) == (
        GENERATOR_DEFAULTS["size"],
        GENERATOR_DEFAULTS["duration"],
        GENERATOR_DEFAULTS["background_contrast"],
        GENERATOR_DEFAULTS["sprite_scale"],
    )
