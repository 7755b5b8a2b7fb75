"""The elastic supernet (OFA-style weight sharing) computes, for every choice, the network a
slice of its weights describes, and runs every architecture of elastic spaces."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import LayerKey, Op, SearchSpace
from models.layer_key import Activation
from models.search_space import Candidate
from models.space_spec import load_spec, spec_from_dict
from models.torch_blocks import MBConv
from nas.elastic_supernet import ElasticMBConv, ElasticSupernet
from nas.one_shot import build_supernet
from tests.fixtures.factories import elastic_spec

SPACES = Path(__file__).resolve().parents[1] / "spaces"


def _randomise(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dtype.is_floating_point:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)


@pytest.mark.parametrize(("label", "cout"), [("k3e3", 8), ("k5e6", 8), ("k3e6", 5), ("k5e3", 6)])
def test_a_smaller_choice_is_the_block_of_its_slice_of_the_weights(label: str, cout: int) -> None:
    elastic = ElasticMBConv(8, 8, 5, 6, 1, False, Activation.RELU6).eval()
    _randomise(elastic, seed=1)
    candidate = Candidate.parse(label)
    key = LayerKey(Op.MBCONV, 6, 8, cout, kernel=candidate.kernel, expansion=candidate.expansion)
    narrow = MBConv(key).eval()
    mid, k = key.mid, candidate.kernel
    cut = (5 - k) // 2
    with torch.no_grad():
        narrow.expand.conv.weight.copy_(elastic.expand.conv.weight[:mid])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(narrow.expand.bn, name).copy_(getattr(elastic.expand.bn, name)[:mid])
            getattr(narrow.depthwise.bn, name).copy_(getattr(elastic.depthwise_bn, name)[:mid])
            getattr(narrow.project.bn, name).copy_(getattr(elastic.project.bn, name)[:cout])
        narrow.depthwise.conv.weight.copy_(
            elastic.depthwise.weight[:mid, :, cut : cut + k, cut : cut + k]
        )
        narrow.project.conv.weight.copy_(elastic.project.conv.weight[:cout, :mid])
    x = torch.rand(2, 8, 6, 6)
    with torch.no_grad():
        got = elastic(x, 8, cout, candidate, residual=key.has_residual)
        want = narrow(x)
    assert torch.allclose(got[:, :cout], want, atol=1e-4)
    assert not got[:, cout:].any()  # a narrower stage's other channels are zero


@pytest.mark.parametrize(
    "spec_file",
    [
        "ofa_mbv3_d234_e346_k357_w1.0.yaml",
        "ofa_proxyless_d234_e346_k357_w1.3.yaml",
        "figs-mbv2-224.yaml",
    ],
)
def test_every_sampled_architecture_of_the_shipped_spaces_runs(spec_file: str) -> None:
    space = SearchSpace(load_spec(SPACES / spec_file))
    model = build_supernet(space, classes=10).eval()
    assert isinstance(model, ElasticSupernet)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        outputs = [model(x, model.path(a)) for a in space.sample(4, seed=2)]
    assert all(o.shape == (2, 10) and torch.isfinite(o).all() for o in outputs)


def test_depth_width_and_resolution_change_what_runs() -> None:
    space = SearchSpace(spec_from_dict(elastic_spec("elastic-supernet-test")))
    model = ElasticSupernet(space, classes=10).eval()
    x = torch.rand(2, 3, 32, 32)
    base = [0] * space.num_layers
    names = [d.name for d in space.decisions]

    def run(**choices: int) -> torch.Tensor:
        arch = list(base)
        for name, value in choices.items():
            arch[names.index(name.replace("__", "."))] = value
        with torch.no_grad():
            return model(x, model.path(arch))

    reference = run()
    for change in ({"resolution": 1}, {"stage0__width": 1}, {"stage0__depth": 1}):
        assert not torch.allclose(run(**change), reference), change
    # A layer past its stage's depth does not run: its candidate changes nothing.
    assert torch.allclose(run(stage0__layer1=1), reference)
