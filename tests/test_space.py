"""Search-space YAML: validation messages, sampling, and the 300M straddle of the default space."""

import random

import pytest

import nasx
from nasx.space.config import load_space, parse_space

GOOD = load_space("cifar32").text


@pytest.mark.parametrize(
    "edit, expected",
    [
        (("partial:", "hyperconv:"), "families.hyperconv: unknown block family"),
        (("dc: [3, 5]", "dc: [3, 99]"), "families.channelwise"),
        (("ratio: [0.25, 0.5]", "ratio: [0.25, 1.5]"), "families.partial.ratio: expected a number in (0, 1]"),
        (("kernel: [3, 5], expansion", "kernel: [3, -5], expansion"), "families.dwsep.kernel"),
        (("stride: 2, depth: [1, 2], out: [48, 64]", "stride: 3, depth: [1, 2], out: [48, 64]"), "stages[1].stride"),
        (("depth: [1, 2], out: [16, 32]", "depth: [], out: [16, 32]"), "stages[0].depth: needs at least one choice"),
        (("out: [96, 128]", "out: [96, 96]"), "duplicate"),
        (("classes: 10", "classes: ten"), "classes"),
        (("name: cifar32", "name: cifar32\nbogus: 1"), "bogus: unknown key"),
        (("groups: [2, 4], kernel", "out: [2], kernel"), "set by the stage skeleton"),
        (("act: relu", "act: swishy"), "act: expected one of"),
        (("input: [3, 32, 32]", "input: [3, 32]"), "input"),
        (("families:", "families: [\n"), "not valid YAML"),
    ],
)
def test_config_errors_name_file_key_and_problem(edit, expected):
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(nasx.ConfigError) as e:
        parse_space(text, "my.yaml")
    assert str(e.value).startswith("my.yaml") and expected in str(e.value)


def test_unknown_config_name():
    with pytest.raises(nasx.ConfigError, match="neither a YAML file nor a built-in"):
        load_space("no-such-space")


def test_default_space_straddles_300M_and_uses_every_family():
    space = load_space("mobile224")
    rng = random.Random(0)
    archs = [space.random_arch(rng) for _ in range(300)]
    madds = [nasx.cost(a).madds for a in archs]
    assert min(madds) < 300e6 < max(madds)
    assert 0.1 < sum(m <= 300e6 for m in madds) / len(madds) < 0.9
    families = set()
    for a in archs:
        families |= set(a.families())
    assert families == {"standard", "dwsep", "group_shuffle", "partial", "channelwise"}
    assert 5 <= len(space.stages) <= 7
    assert space.input == (3, 224, 224) and space.classes == 1000


def test_every_sampled_architecture_is_valid_and_builds():
    import torch

    for name in ("cifar32", "mobile224"):
        space = load_space(name)
        rng = random.Random(1)
        for _ in range(200):
            space.random_arch(rng).graphs()  # raises ArchError if any sample were invalid
    space = load_space("cifar32")
    arch = space.random_arch(random.Random(2))
    out = nasx.build(arch).eval()(torch.randn(2, *arch.input))
    assert tuple(out.shape) == (2, 10)


def test_parameter_names_are_fixed_per_position():
    """The same position always asks for the same names and choices (Optuna needs fixed distributions)."""
    space = load_space("cifar32")
    seen = {}

    class Recorder:
        def __init__(self, seed):
            self.rng = random.Random(seed)

        def suggest_categorical(self, name, choices):
            assert seen.setdefault(name, tuple(choices)) == tuple(choices)
            return self.rng.choice(list(choices))

    for seed in range(50):
        space.sample(Recorder(seed))
    assert "s1_b0_family" in seen and any(k.startswith("s2_b0_dwsep_") for k in seen)


def test_sampled_arch_hash_survives_a_json_round_trip():
    """The stored arch hash keys the latency cache: reloading the stored JSON must give the same hash."""
    for name in ("cifar32", "mobile224"):
        space = load_space(name)
        rng = random.Random(3)
        for _ in range(50):
            arch = space.random_arch(rng)
            assert nasx.Arch.from_json(arch.to_json()).content_hash() == arch.content_hash()


def test_choose_stage_repeats_one_choice_per_stage_and_counts_the_space():
    """choose: stage (MnasNet's factorized space): every block of a stage has the same family and parameters,
    each stage asks for one set of names, and size() counts stage choices once, not once per block."""
    block = parse_space(GOOD, "cifar32.yaml")
    stage = parse_space(GOOD.replace("name: cifar32", "name: cifar32\nchoose: stage"), "stage.yaml")
    asked = []

    class Recorder:
        def __init__(self, seed):
            self.rng, self.picked = random.Random(seed), {}

        def suggest_categorical(self, name, choices):
            asked.append(name)
            # Optuna returns the stored value when a name is asked again; a second ask must not happen here
            assert name not in self.picked, name
            self.picked[name] = self.rng.choice(list(choices))
            return self.picked[name]

    for seed in range(40):
        arch = stage.sample(Recorder(seed))
        strided = [i for i, layer in enumerate(arch.layers) if layer.stride == 2] + [len(arch.layers)]
        starts = [0] + strided[:-1]
        for a, b in zip(starts, strided):  # a stage = from one strided block up to the next
            params = [{k: v for k, v in vars(layer).items() if k != "stride"} for layer in arch.layers[a:b]]
            assert all(p == params[0] for p in params), params
    assert "s1_family" in asked and not any("_b1_" in n for n in asked)
    assert stage.size() < block.size()


def test_choose_must_be_block_or_stage():
    with pytest.raises(nasx.ConfigError, match=r"my.yaml: choose: expected block .* got 'layer'"):
        parse_space(GOOD.replace("name: cifar32", "name: cifar32\nchoose: layer"), "my.yaml")
