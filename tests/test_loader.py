"""The training loader serves the right frames for the right videos in the right order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect.data.ingest import ingest_batch
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import FrameStore, StorePaths, pack_batch
from dfdetect.testkit.batches import Video, video_code, write_face_batch
from dfdetect.training.loader import FrameDataset, class_weights, nearest_filled_slot

N_SLOTS = 6


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two batches; each video's frame f has red = f, so a pixel tells which frame it is."""
    folder = tmp_path_factory.mktemp("store")
    layouts = {
        "0-0": [Video("a", frames=[0, 10, 20, 30, 40, 50]), Video("b", "FAKE", "a", frames=[5, 25, 45])],
        "0-1": [Video("c", "FAKE", "x", frames=[12, 31]), Video("d", frames=[3, 33, 53])],
    }
    for batch, videos in layouts.items():
        zip_path = write_face_batch(folder / f"deepfake-detection-faces-part-{batch}.zip", videos, size=8)
        manifest = ingest_batch(zip_path, batch)
        selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, N_SLOTS)
        pack_batch(
            zip_path, selection, batch, StorePaths.for_prefix(folder / "store" / batch), 8, N_SLOTS, progress=False
        )
    return FrameStore.from_folder(folder / "store")


def videos_table(*pairs):
    return pd.DataFrame(pairs, columns=["video_id", "label"])


def red(frames):
    return frames[..., 0, 0, 0].tolist()


def test_middle_frame_per_video_in_order(store):
    dataset = FrameDataset(store, videos_table(("d", 0), ("a", 0), ("b", 1), ("c", 1)), mode="middle", batch_size=3)
    assert len(dataset) == 2
    inputs, labels = dataset[0]
    frames = inputs["frames"]
    assert frames.dtype == np.uint8 and frames.shape == (3, 8, 8, 3)
    # middle slot is 3: a has 30; b fills slots 0, 2, 4 -> nearest to 3 is 2 (earlier wins a tie) -> 25;
    # d fills 0, 3, 5 -> 33; c fills 1, 3 -> 31
    assert red(frames) == [33, 30, 25]
    assert frames[:, 0, 0, 2].tolist() == [video_code("d"), video_code("a"), video_code("b")]
    assert labels.tolist() == [0.0, 0.0, 1.0]
    inputs, labels = dataset[1]
    assert red(inputs["frames"]) == [31] and labels.tolist() == [1.0]
    with pytest.raises(IndexError):
        dataset[2]


def test_every_filled_frame_is_a_sample(store):
    dataset = FrameDataset(store, videos_table(("b", 1), ("c", 1), ("a", 0)), mode="all", batch_size=100)
    inputs, labels = dataset[0]
    assert red(inputs["frames"]) == [5, 25, 45, 12, 31, 0, 10, 20, 30, 40, 50]
    assert labels.tolist() == [1.0] * 5 + [0.0] * 6


def test_n_frames_per_video_spread_over_the_clip(store):
    dataset = FrameDataset(store, videos_table(("a", 0), ("c", 1)), mode=3, batch_size=100)
    inputs, labels = dataset[0]
    # a fills slots 0..5 -> 0, 2 or 3, 5 (evenly spaced, rounded); c has only two filled slots -> both
    assert red(inputs["frames"]) == [0, 20, 50, 12, 31]
    with pytest.raises(ValueError, match="unknown loader mode"):
        FrameDataset(store, videos_table(("a", 0)), mode=0)


def test_clips_with_mask(store):
    dataset = FrameDataset(store, videos_table(("c", 1), ("b", 1)), mode="clip", batch_size=2)
    inputs, labels = dataset[0]
    assert inputs["frames"].shape == (2, N_SLOTS, 8, 8, 3) and inputs["frames"].dtype == np.uint8
    # filled slots first, in slot order (right padding), the rest zeros and masked out
    assert inputs["mask"].tolist() == [
        [True, True, False, False, False, False],
        [True, True, True, False, False, False],
    ]
    assert inputs["frames"][0, :, 0, 0, 0].tolist() == [12, 31, 0, 0, 0, 0]
    assert inputs["frames"][1, :, 0, 0, 0].tolist() == [5, 25, 45, 0, 0, 0]
    assert inputs["frames"][0, :, 0, 0, 2].tolist() == [video_code("c")] * 2 + [0] * 4


def test_shuffle_changes_per_epoch_and_is_repeatable(store):
    table = videos_table(("a", 0), ("b", 1), ("c", 1), ("d", 0))

    def epochs(seed):
        dataset = FrameDataset(store, table, mode="all", batch_size=4, shuffle=True, seed=seed)
        seen = []
        for _ in range(2):
            seen.append([value for index in range(len(dataset)) for value in red(dataset[index][0]["frames"])])
            dataset.on_epoch_end()
        return seen

    first, again = epochs(3), epochs(3)
    assert first == again
    assert first[0] != first[1]
    assert sorted(first[0]) == sorted(first[1]) == sorted([0, 10, 20, 30, 40, 50, 5, 25, 45, 12, 31, 3, 33, 53])


def test_flip_mirrors_about_half(store):
    # Frames with a left-right gradient make flips visible (swapped in for this test only).
    original = store.frames["0-0"]
    gradient = np.array(original)
    gradient[..., 0] = np.arange(8, dtype=np.uint8)[None, None, None, :]
    store.frames["0-0"] = gradient
    try:
        dataset = FrameDataset(store, videos_table(("a", 0)), mode="all", batch_size=6, flip=True, seed=1)
        inputs, _ = dataset[0]
        rows = inputs["frames"][:, 0, :, 0]
        flipped = [row.tolist() == list(range(7, -1, -1)) for row in rows]
        kept = [row.tolist() == list(range(8)) for row in rows]
        assert all(f or k for f, k in zip(flipped, kept))
        assert 0 < sum(flipped) < len(rows)
    finally:
        store.frames["0-0"] = original


def test_class_weights_and_sample_weights(store):
    weights = class_weights([1, 1, 1, 0])
    assert weights == {0: 2.0, 1: 4 / 6}
    dataset = FrameDataset(store, videos_table(("a", 0), ("b", 1)), mode="middle", batch_size=2, class_weight=weights)
    _, labels, sample_weights = dataset[0]
    assert sample_weights.tolist() == pytest.approx([2.0, 4 / 6])
    with pytest.raises(ValueError, match="no REAL"):
        class_weights([1, 1])


def test_nearest_filled_slot():
    assert nearest_filled_slot(np.array([0, 1, 0, 0, 0, 1], bool), 3) == 1
    assert nearest_filled_slot(np.array([0, 1, 0, 0, 1, 0], bool), 3) == 4
    assert nearest_filled_slot(np.array([0, 0, 1, 0, 1, 0], bool), 3) == 2
    assert nearest_filled_slot(np.zeros(4, bool), 2) == -1


def test_unknown_video_is_named(store):
    with pytest.raises(KeyError, match="ghost"):
        FrameDataset(store, videos_table(("a", 0), ("ghost", 1)))


def test_loader_feeds_keras_fit(store):
    import keras

    inputs = keras.Input((8, 8, 3), dtype="uint8", name="frames")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model({"frames": inputs}, outputs)
    model.compile("adam", "binary_crossentropy")
    table = videos_table(("a", 0), ("b", 1), ("c", 1), ("d", 0))
    dataset = FrameDataset(
        store, table, mode="all", batch_size=4, shuffle=True, class_weight=class_weights(table["label"])
    )
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_batch_multiple_cuts_a_short_last_batch_to_whole_shares(store):
    """Data parallelism on JAX splits every batch evenly over the devices."""
    table = videos_table(("a", 0), ("b", 1), ("c", 1), ("d", 0))  # 14 frames
    sizes = {}
    for replicas in (1, 2, 3):
        dataset = FrameDataset(store, table, mode="all", batch_size=6, batch_multiple=replicas, shuffle=True)
        sizes[replicas] = [len(dataset[index][1]) for index in range(len(dataset))]
    assert sizes == {1: [6, 6, 2], 2: [6, 6, 2], 3: [6, 6]}
