"""The built-in search spaces, by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from models.errors import UserInputError
from models.search_space import SearchSpace, Stage, build_space

# The seed's space: what every command, route and script takes when none is named.
DEFAULT_SPACE = "spnas-mobilenetv2-224"
SEED_CANDIDATES = ("k3e3", "k3e6", "k5e3", "k5e6")
# SE as a searchable choice on every candidate; the seed's four come first so that indices
# 0..3 mean the same in both spaces.
SE_CANDIDATES = (*SEED_CANDIDATES, *(c + "se" for c in SEED_CANDIDATES))


def _spnas(name: str, candidates: tuple[str, ...], description: str) -> SearchSpace:
    return build_space(
        name,
        input_hw=224,
        input_channels=3,
        prefix=("conv_hw224_i3_o32_k3_s2", "mbconv_hw112_i32_o16_k3_e1_s1"),
        stages=(
            Stage(24, 4, 2),
            Stage(40, 4, 2),
            Stage(80, 4, 2),
            Stage(96, 4, 1),
            Stage(192, 4, 2),
        ),
        candidates=candidates,
        # The head as OFA and ProxylessNAS measure it: the 1x1 feature-mix conv (their
        # Conv_1), then pooling + classifier (their Logits), each a layer variant of its own.
        suffix=(
            "mbconv_hw7_i192_o320_k3_e6_s1",
            "conv_hw7_i320_o1280_k1_s1",
            "logits_hw7_i1280_c1000",
        ),
        description=description,
    )


def spnas_mobilenetv2_224() -> SearchSpace:
    return _spnas(
        DEFAULT_SPACE,
        SEED_CANDIDATES,
        "Single-Path NAS (Stamoulis et al. 2019): MobileNetV2 backbone, 224x224 input, 20 "
        "searchable MBConv layers with k3e3/k3e6/k5e3/k5e6, skip on non-first layers.",
    )


def spnas_se_mobilenetv2_224() -> SearchSpace:
    return _spnas(
        "spnas-se-mobilenetv2-224",
        SE_CANDIDATES,
        "The Single-Path NAS space with squeeze-and-excitation searchable on every candidate.",
    )


def tiny_64() -> SearchSpace:
    return build_space(
        "tiny-64",
        input_hw=64,
        input_channels=3,
        prefix=("conv_hw64_i3_o16_k3_s2", "mbconv_hw32_i16_o8_k3_e1_s1"),
        stages=(Stage(16, 2, 2), Stage(24, 2, 2)),
        candidates=SEED_CANDIDATES,
        suffix=("mbconv_hw8_i24_o32_k3_e6_s1", "conv_hw8_i32_o128_k1_s1", "logits_hw8_i128_c10"),
        description="A small space for quick runs and tests: 64x64 input, 4 searchable layers.",
    )


BUILTIN: dict[str, Callable[[], SearchSpace]] = {
    DEFAULT_SPACE: spnas_mobilenetv2_224,
    "spnas-se-mobilenetv2-224": spnas_se_mobilenetv2_224,
    "tiny-64": tiny_64,
}


class UnknownSearchSpace(UserInputError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown search space {name!r}; built-in spaces: {', '.join(sorted(BUILTIN))}"
        )
        self.name = name


@cache
def get_space(name: str) -> SearchSpace:
    try:
        factory = BUILTIN[name]
    except KeyError:
        raise UnknownSearchSpace(name) from None
    return factory()
