import json

import pytest

from jetkeras.config import MODEL_PRESETS, JetConfig, model_preset


def test_round_trip_through_json(tmp_path):
    config = JetConfig().replace(data={"frames": 4, "size": 32}, train={"epochs": 2})
    path = tmp_path / "config.json"
    config.to_json(path)
    assert JetConfig.from_json(path) == config
    assert json.loads(path.read_text())["data"]["frames"] == 4


def test_partial_file_takes_defaults(tmp_path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"train": {"learning_rate": 1}}))
    config = JetConfig.from_json(path)
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.data == JetConfig().data


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"train": {"epoch": 3}}))
    with pytest.raises(ValueError, match=r"bad.json: unknown key `train.epoch`"):
        JetConfig.from_json(path)


def test_unknown_section_is_named():
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['trian'\]"):
        JetConfig.from_dict({"trian": {}})


def test_wrong_type_is_named():
    with pytest.raises(ValueError, match=r"key `data.frames` expected int, received str '30'"):
        JetConfig.from_dict({"data": {"frames": "30"}})
    with pytest.raises(ValueError, match=r"key `model.widths` expected a list of int"):
        JetConfig.from_dict({"model": {"widths": 8}})


def test_bad_choice_lists_valid_values():
    with pytest.raises(ValueError, match=r"`train.schedule`: expected one of .*'cosine'.*"
                                         r"received 'linear'"):
        JetConfig.from_dict({"train": {"schedule": "linear"}})


def test_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{data:")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        JetConfig.from_json(path)


def test_presets():
    assert model_preset("seed").widths[:5] == (64, 128, 256, 512, 512)
    assert set(MODEL_PRESETS) >= {"light", "seed"}
    with pytest.raises(ValueError, match=r"--preset: expected one of .*received 'huge'"):
        model_preset("huge")
