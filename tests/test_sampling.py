"""Active sampling: which layers to measure next, and the model's own estimate of its error."""

from __future__ import annotations

import random

import numpy as np

from models import get_space, parse
from predictor.layer_model import fit_layer_model, uninformed_model
from predictor.sampling import (
    choose_layers,
    network_error,
    predicted_sums,
    spread_networks,
)
from tests.fixtures.factories import spec_file_space
from tests.test_layer_model import WEIGHTS, device_truth

OFA = spec_file_space("ofa_mbv3_d234_e346_k357_w1.0")
SEED = get_space("spnas-mobilenetv2-224")


def _truth_and_networks(seed: int) -> tuple[dict[str, float], list[list]]:
    networks = [list(OFA.network(a)) for a in OFA.sample(150, seed)]
    keys = sorted({k for net in networks for k in net if k.op.value != "skip"}, key=str)
    return device_truth(keys, WEIGHTS, wiggle=0.15, seed=seed), networks


def _sum_error(truth: dict[str, float], measured: dict[str, float], networks: list[list]) -> float:
    """MAPE of the networks' layer sums, measured layers from the truth, the rest estimated."""
    model = fit_layer_model(measured)
    predicted = predicted_sums(model, networks, measured)
    actual = np.asarray([sum(truth[str(k)] for k in n if k.op.value != "skip") for n in networks])
    return float(100 * np.mean(np.abs(predicted - actual) / actual))


def test_choices_are_distinct_unmeasured_and_within_the_budget() -> None:
    truth, networks = _truth_and_networks(0)
    measured = dict(list(truth.items())[:20])
    picks = choose_layers(fit_layer_model(measured), networks, measured, 15)
    keys = [p.layer_key for p in picks]
    assert len(keys) == 15 == len(set(keys))
    assert not set(keys) & set(measured)
    assert all(p.networks_holding >= 1 for p in picks)
    gains = [p.gain for p in picks]
    assert gains[0] == max(gains)  # greedy: the first pick gained most


def test_chosen_layers_reduce_the_network_error_more_than_random_ones() -> None:
    truth, networks = _truth_and_networks(1)
    start = dict(random.Random(1).sample(sorted(truth.items()), 12))
    model = fit_layer_model(start)
    picks = choose_layers(model, networks, start, 30)
    active = start | {p.layer_key: truth[p.layer_key] for p in picks}
    randoms = []
    for draw in range(5):
        pool = sorted(set(truth) - set(start))
        chosen = random.Random(100 + draw).sample(pool, 30)
        randoms.append(_sum_error(truth, start | {k: truth[k] for k in chosen}, networks))
    assert _sum_error(truth, active, networks) < float(np.median(randoms))


def test_the_expected_error_falls_as_layers_are_measured_and_is_zero_with_all() -> None:
    truth, networks = _truth_and_networks(2)
    few = dict(list(truth.items())[:15])
    model = fit_layer_model(few)
    before = network_error(model, networks, few)
    more = few | {p.layer_key: truth[p.layer_key] for p in choose_layers(model, networks, few, 40)}
    after = network_error(fit_layer_model(more), networks, more)
    assert 0 < after.expected_mape_pct < before.expected_mape_pct
    assert after.estimated_layer_share_pct < before.estimated_layer_share_pct
    everything = network_error(model, networks, truth)  # whatever the model, nothing estimated
    assert everything.expected_mape_pct == 0.0
    assert everything.estimated_layer_share_pct == 0.0


def test_a_device_with_nothing_known_still_gets_a_spread_first_choice() -> None:
    networks = [list(SEED.network(a)) for a in SEED.sample(100, 3)]
    picks = choose_layers(uninformed_model(SEED.variants()), networks, {}, 10)
    assert len({p.layer_key for p in picks}) == 10
    ops = {parse(p.layer_key).kernel for p in picks}
    assert len(ops) > 1  # not ten of one kind


def test_calibration_networks_span_the_predicted_range() -> None:
    predicted = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    chosen = spread_networks(predicted, 3)
    assert len(chosen) == 3
    assert {int(np.argmin(predicted)), int(np.argmax(predicted))} <= set(chosen)
    assert spread_networks(predicted, 0) == []
    assert len(spread_networks(predicted, 50)) == 7
