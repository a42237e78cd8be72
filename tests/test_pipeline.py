"""tf.data pipeline: shapes, one augmentation per sequence, determinism, normalisation."""

import numpy as np
import pytest
import tensorflow as tf

from jetkeras.build_records import build_records
from jetkeras.config import JetConfig
from jetkeras.pipeline import augment, make_dataset, normalise

TINY = JetConfig().replace(data={"frames": 4, "size": 32}, train={"batch_size": 4})


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "records"
    build_records(source="synthetic", out=out, config=TINY, limit=40, seed=1,
                  records_per_shard=8, progress=False)
    return out


def test_batches_have_static_shapes_and_dtypes(records):
    dataset = make_dataset(records, "train", TINY)
    assert dataset.element_spec[0].shape.as_list() == [4, 4, 32, 32, 1]
    assert dataset.element_spec[1].shape.as_list() == [4]
    frames, labels = next(iter(dataset))
    assert frames.dtype == tf.float32 and labels.dtype == tf.float32
    assert set(np.unique(labels.numpy())) <= {0.0, 1.0}


def test_evaluation_keeps_every_sequence_in_order(records):
    config = TINY.replace(data={"augment": False})
    first = [e for _, _, ids in make_dataset(records, "test", config, include_ids=True)
             for e in ids.numpy()]
    second = [e for _, _, ids in make_dataset(records, "test", config, include_ids=True)
              for e in ids.numpy()]
    assert first == second and len(first) == len(set(first))


def test_same_seed_same_batches_other_seed_other_batches(records):
    def batches(seed):
        dataset = make_dataset(records, "train", TINY, seed=seed)
        return [x.numpy() for x, _ in dataset.take(3)]

    a, b, c = batches(7), batches(7), batches(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def _dihedral(frame):
    """The 8 rotations/flips of one frame."""
    out = []
    for flipped in (frame, frame[:, ::-1]):
        for k in range(4):
            out.append(np.rot90(flipped, k))
    return out


def test_one_transform_for_all_frames_of_a_sequence():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 500, size=(6, 16, 16, 1)).astype(np.float32)
    config = TINY.replace(data={"brightness_jitter": 0.0})
    seen_transforms = set()
    for draw in range(12):
        seed = tf.constant([draw, 99], tf.int64)
        augmented = augment(tf.constant(frames), seed, config).numpy()
        chosen = []
        for t in range(frames.shape[0]):
            candidates = _dihedral(frames[t, :, :, 0])
            matches = [i for i, c in enumerate(candidates)
                       if np.array_equal(c, augmented[t, :, :, 0])]
            assert matches, f"frame {t} is not a rotation/flip of the original"
            chosen.append(matches[0])
        assert len(set(chosen)) == 1, f"frames got different transforms: {chosen}"
        seen_transforms.add(chosen[0])
    assert len(seen_transforms) >= 4  # the draws really vary between sequences


def test_shared_angle_and_gain_apply_to_every_frame_alike():
    frame = np.zeros((16, 16), np.float32)
    frame[4:6, 8:14] = 100.0
    frames = np.stack([frame] * 3)[..., None]
    config = TINY.replace(data={"max_angle_deg": 40.0, "rot90": False, "flips": False,
                                "brightness_jitter": 0.5})
    augmented = augment(tf.constant(frames), tf.constant([3, 4], tf.int64), config).numpy()
    assert not np.allclose(augmented[0], frames[0])
    np.testing.assert_allclose(augmented[1], augmented[0])
    np.testing.assert_allclose(augmented[2], augmented[0])


def test_normalisation_matches_training_statistics():
    stats = {"clip_dn": 1000.0, "mean": 50.0, "std": 10.0, "log_mean": 1.0, "log_std": 2.0}
    x = np.array([40.0, 60.0, 5000.0], np.float32)
    np.testing.assert_allclose(normalise(x, stats).numpy(), [-1.0, 1.0, 95.0])
    np.testing.assert_allclose(normalise(x, stats, "log").numpy(),
                               (np.log1p([40.0, 60.0, 1000.0]) - 1.0) / 2.0, rtol=1e-6)
    for scaling in ("clip", "log"):  # predict's NumPy path equals the tf.data path
        np.testing.assert_allclose(normalise(x, stats, scaling, numpy=True),
                                   normalise(x, stats, scaling).numpy(), rtol=1e-6)


def test_records_of_another_geometry_are_refused(records):
    with pytest.raises(ValueError, match=r"records hold sequences of 4 frames of 32x32 px, the "
                                         r"model expects 30 frames of 166x166 px"):
        make_dataset(records, "train", JetConfig())


def test_unknown_split(records):
    with pytest.raises(ValueError, match=r"expected a split among|split 'holdout' is empty"):
        make_dataset(records, "holdout", TINY)
