"""Top-k counting and multi-view aggregation: softmax averaged per video, duplicates dropped,
failed videos left out and listed."""

import pickle

import pytest
import torch

from resformer_video.utils.meters import TrainMeter, ViewPredictions, topk_correct


def test_topk_correct_against_manual_counts():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([2, 0, 0])
    assert topk_correct(scores, labels, (1, 2, 5)) == [1, 2, 3]


def _batch(videos, views, labels, valid=None, failed=None):
    n = len(videos)
    return {
        "video_idx": torch.tensor(videos),
        "view_idx": torch.tensor(views),
        "label": torch.tensor(labels),
        "valid": torch.tensor(valid or [True] * n),
        "failed": failed or [[] for _ in range(n)],
    }


def test_stored_scores_do_not_keep_their_batch():
    """Ranks gather the scores by pickling: each clip must carry its own row, not the batch's."""
    preds = ViewPredictions()
    batch, classes = 8, 400
    preds.add_batch(torch.rand(batch, classes).softmax(-1), _batch(list(range(batch)), [0] * batch, [0] * batch))
    row_bytes = classes * 4
    assert len(pickle.dumps(preds.scores)) < batch * row_bytes * 1.5  # a view would pickle 8x that


def test_video_level_averages_softmax_over_views():
    preds = ViewPredictions()
    # Video 0 (label 1): views disagree; the average favours class 1. Video 1 (label 0): right.
    preds.add_batch(torch.tensor([[0.6, 0.4], [0.0, 1.0]]), _batch([0, 0], [0, 1], [1, 1]))
    preds.add_batch(torch.tensor([[0.9, 0.1]]), _batch([1], [0], [0]))
    # A padded duplicate of (video 1, view 0), as a distributed sampler would add, counts once.
    preds.add_batch(torch.tensor([[0.9, 0.1]]), _batch([1], [0], [0]))
    video = preds.video_metrics(ks=(1,), expected_views=2)
    assert video["top1"] == pytest.approx(100.0) and video["num_videos"] == 2
    assert video["num_incomplete"] == 1  # video 1 has one of its two views
    clip = preds.clip_metrics(ks=(1,))
    assert clip["num_clips"] == 3 and clip["clip_top1"] == pytest.approx(100.0 * 2 / 3)


def test_failed_videos_are_left_out_and_listed():
    preds = ViewPredictions()
    preds.add_batch(
        torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]),
        _batch([0, 1, 2], [0, 0, 0], [1, 1, 0], valid=[True, True, False], failed=[[], [], ["videos/broken.mp4"]]),
    )
    metrics = preds.video_metrics(ks=(1,))
    assert metrics["num_videos"] == 2 and metrics["num_failed"] == 1
    assert metrics["top1"] == pytest.approx(50.0)
    assert preds.failed_paths() == ["videos/broken.mp4"]
    merged = preds.gather()  # one process: the same content
    assert merged.failed_paths() == ["videos/broken.mp4"] and merged.valid_videos() == [0, 1]


def test_train_meter_eta_and_stats():
    meter = TrainMeter(iters_per_epoch=10, max_epoch=2, window=5)
    for _ in range(4):
        meter.update({"loss": 2.0, "ce_64": 1.5}, iter_seconds=0.5, num_clips=8)
    stats = meter.iter_stats(epoch=0, cur_iter=3, lr=0.01, world_size=2)
    assert stats["loss"] == 2.0 and stats["ce_64"] == 1.5
    assert stats["eta"] == "0:00:08"  # 16 iterations left x 0.5 s
    assert stats["clips_per_s"] == pytest.approx(8 * 2 / 0.5)
    assert meter.epoch_stats(0, 0.01)["loss"] == 2.0


def test_training_failures_counted_and_logged_once_per_path(monkeypatch):
    import importlib
    from types import SimpleNamespace

    train_module = importlib.import_module("resformer_video.engine.train")  # the module, not train()

    warnings = []
    fake_logger = SimpleNamespace(warning=lambda msg, *args: warnings.append(msg % args))
    monkeypatch.setattr(train_module, "logger", fake_logger)  # independent of logging set-up
    state = SimpleNamespace(failed_paths=set(), num_failed=0)
    train_module._note_failures(state, [["a.mp4"], [], ["a.mp4", "b.mp4"]])
    train_module._note_failures(state, [["b.mp4"]])
    assert state.num_failed == 4 and state.failed_paths == {"a.mp4", "b.mp4"}
    assert [w.rsplit(" ", 1)[-1] for w in warnings] == ["a.mp4", "b.mp4"]
