"""The layer model: any layer key, calibrated intervals, other devices as a prior."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from models import LayerKey, SearchSpace, get_space, parse
from models.features import FEATURES, feature_matrix, shape_matrix
from predictor.artifact import PredictorArtifact
from predictor.compiled import lookup
from predictor.layer_model import MIN_LAYERS_ALONE, fit_layer_model
from tests.fixtures.factories import spec_file_space

OFA = spec_file_space("ofa_mbv3_d234_e346_k357_w1.0")
SEED = get_space("spnas-mobilenetv2-224")


def device_truth(
    keys: list[LayerKey], per_feature: np.ndarray, wiggle: float, seed: int, noise: float = 0.01
) -> dict[str, float]:
    """A device whose latency is linear in the features, times a smooth factor over shape (what
    a runtime's tiling does) and a little measurement noise."""
    x = feature_matrix(keys) / feature_matrix(keys).max(axis=0).clip(min=1)
    z = shape_matrix(keys)
    smooth = np.exp(wiggle * np.sin(z[:, 1] * 1.3) * np.cos(z[:, 0] * 0.7))
    rng = np.random.default_rng(seed)
    ms = (x @ per_feature + 0.01) * smooth * np.exp(rng.normal(0, noise, len(keys)))
    return dict(zip(map(str, keys), ms.tolist(), strict=True))


def ofa_keys(n: int, seed: int) -> list[LayerKey]:
    return random.Random(seed).sample(list(OFA.variants()), n)


WEIGHTS = np.random.default_rng(1).uniform(0.2, 2.0, len(FEATURES))


def held_out_mape(model_layers: dict[str, float], truth: dict[str, float], **kw: object) -> float:
    model = fit_layer_model(model_layers, **kw)  # type: ignore[arg-type]
    rest = [k for k in truth if k not in model_layers]
    predicted = model.predict([parse(k) for k in rest])
    measured = np.asarray([truth[k] for k in rest])
    return float(100 * np.mean(np.abs(predicted - measured) / measured))


def test_the_shape_correction_predicts_unseen_layers_better_than_the_linear_cost_alone() -> None:
    keys = ofa_keys(260, seed=0)
    truth = device_truth(keys, WEIGHTS, wiggle=0.15, seed=0)
    train = dict(list(truth.items())[:160])
    model = fit_layer_model(train)
    assert model.residual is not None, "cross-validation should keep the GP on a wiggly device"
    rest = [k for k in truth if k not in train]
    with_gp = model.predict([parse(k) for k in rest])
    without = model.linear_ms([parse(k) for k in rest]) * model.carried([parse(k) for k in rest])
    measured = np.asarray([truth[k] for k in rest])
    gp_mape = np.mean(np.abs(with_gp - measured) / measured)
    linear_mape = np.mean(np.abs(without - measured) / measured)
    assert gp_mape < 0.7 * linear_mape
    assert model.cv_mape_pct is not None
    assert model.cv_mape_pct < 100 * linear_mape


def test_the_stated_90_percent_interval_holds_about_90_percent_of_unseen_layers() -> None:
    keys = ofa_keys(400, seed=2)
    truth = device_truth(keys, WEIGHTS, wiggle=0.1, seed=2, noise=0.04)
    train = dict(list(truth.items())[:200])
    model = fit_layer_model(train)
    rest = [parse(k) for k in truth if k not in train]
    low, high = model.interval(rest)
    measured = np.asarray([truth[str(k)] for k in rest])
    held = float(np.mean((measured >= low) & (measured <= high)))
    assert 0.8 <= held <= 0.98, held
    assert model.cv_coverage90_pct is not None
    assert 85 <= model.cv_coverage90_pct <= 95
    # The variance a network sum adds up is the interval's, in ms².
    sd_ms = np.sqrt(model.variance_ms2(rest))
    assert np.all(sd_ms > 0)
    assert np.all(sd_ms < model.predict(rest))


def test_ten_layers_and_a_known_similar_device_beat_ten_layers_alone() -> None:
    keys = ofa_keys(300, seed=3)
    similar = WEIGHTS * np.random.default_rng(4).uniform(0.9, 1.1, WEIGHTS.size) * 1.8
    unlike = WEIGHTS[::-1].copy()
    new = device_truth(keys, similar * 1.05, wiggle=0.1, seed=5)
    known_similar = device_truth(keys, similar, wiggle=0.1, seed=6)
    known_unlike = device_truth(keys, unlike, wiggle=0.0, seed=7)
    ten = dict(random.Random(8).sample(sorted(new.items()), 10))
    others = {"similar": known_similar, "unlike": known_unlike}
    with_prior = held_out_mape(ten, new, others=others)
    alone = held_out_mape(ten, new)
    assert with_prior < 5.0
    assert with_prior < 0.5 * alone
    model = fit_layer_model(ten, others)
    weights = {s.device: s.weight for s in model.similarity}
    assert weights["similar"] > 0.9, model.similarity
    ratio = {s.device: s.speed_ratio for s in model.similarity}["similar"]
    assert ratio == pytest.approx(1.05, rel=0.05)


def test_a_device_with_no_layers_of_its_own_is_predicted_from_the_others() -> None:
    keys = ofa_keys(60, seed=9)
    known = device_truth(keys, WEIGHTS, wiggle=0.0, seed=9)
    model = fit_layer_model({}, {"known": known})
    predicted = model.predict([parse(k) for k in known])
    assert np.allclose(predicted, list(known.values()), rtol=0.1)


def test_too_few_layers_and_no_other_device_is_refused_with_the_count_needed() -> None:
    truth = device_truth(ofa_keys(5, seed=10), WEIGHTS, wiggle=0.0, seed=10)
    with pytest.raises(ValueError, match=f"at least {MIN_LAYERS_ALONE} measured layers"):
        fit_layer_model(truth)


def test_the_layer_model_round_trips_through_the_artifact_and_predicts_the_same() -> None:
    keys = ofa_keys(80, seed=11)
    truth = device_truth(keys, WEIGHTS, wiggle=0.1, seed=11)
    half = dict(list(truth.items())[:40])
    model = fit_layer_model(half, {"other": truth})
    artifact = PredictorArtifact(layer_model=model)
    back = PredictorArtifact.from_json(artifact.to_json()).layer_model
    assert back is not None
    rest = [parse(k) for k in truth if k not in half]
    assert np.allclose(back.predict(rest), model.predict(rest))
    assert back.similarity == model.similarity


def test_a_schema_1_artifact_with_a_regression_still_loads_and_predicts() -> None:
    """Versions stored before layer models: schema 1, a regression and no layer model."""
    stored = {
        "schema_version": 1,
        "layers": {"mbconv_hw56_i24_o40_k5_e6_s2": {"ms": 1.5, "source": "measured", "n": 3}},
        "positions": {},
        "calibration": {},
        "regression": {
            "features": ["pointwise_macs", "depthwise_macs"],
            "scale": [1e6, 1e6],
            "coef": [0.5, 0.25],
            "intercept": 0.1,
            "n_train": 40,
            "cv_mape_pct": 3.9,
            "cv_rms_rel": 0.05,
        },
    }
    artifact = PredictorArtifact.from_json(json.dumps(stored))
    assert artifact.layer_model is None
    assert artifact.regression is not None
    found = lookup(artifact, [parse("mbconv_hw28_i40_o40_k3_e3_s1")])
    assert bool(found.estimated[0])
    assert found.ms[0] > 0.1


def test_the_seed_space_and_ofa_layers_share_one_model() -> None:
    """Fitted on every layer the device measured, in every space: one model answers for the
    seed space's keys and OFA's alike."""
    keys = list(SEED.variants()) + ofa_keys(60, seed=12)
    truth = device_truth(keys, WEIGHTS, wiggle=0.0, seed=12)
    model = fit_layer_model(truth)
    assert model.n_train == len(set(map(str, keys)))
    space: SearchSpace = SEED
    assert model.predict(list(space.variants())).shape == (len(space.variants()),)
