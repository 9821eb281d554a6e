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
        for a, b in zip(starts, strided, strict=True):  # a stage = from one strided block up to the next
            params = [{k: v for k, v in vars(layer).items() if k != "stride"} for layer in arch.layers[a:b]]
            assert all(p == params[0] for p in params), params
    assert "s1_family" in asked and not any("_b1_" in n for n in asked)
    assert stage.size() < block.size()


def test_choose_must_be_block_or_stage():
    with pytest.raises(nasx.ConfigError, match=r"my.yaml: choose: expected block .* got 'layer'"):
        parse_space(GOOD.replace("name: cifar32", "name: cifar32\nchoose: layer"), "my.yaml")


# ---- candidate lists ----------------------------------------------------------------------------------

CANDIDATES = """
name: cand
input: [3, 16, 16]
classes: 10
act: relu
stem: {out: [16], kernel: 3, stride: 1}
stages:
  - {stride: 1, depth: [2], out: [16, 24]}
  - {stride: 2, depth: [2], out: [32], candidates: [{type: standard, kernel: 3}, skip]}
head: {out: [64]}
candidates:
  - skip
  - {type: dwsep, kernel: 3, expansion: 3}
  - {name: big, type: dwsep, kernel: 5, expansion: 6}
"""


class Fixed:
    """Answers each decision from a dict (single-choice ones by their only value); records what was asked."""

    def __init__(self, picks):
        self.picks, self.asked = picks, {}

    def suggest_categorical(self, name, choices):
        self.asked[name] = list(choices)
        return self.picks.get(name, choices[0])


def test_candidate_lists_name_one_decision_per_position_with_the_stage_override():
    space = parse_space(CANDIDATES, "cand.yaml")
    rec = Fixed({})
    space.sample(rec)
    blocks = {k: v for k, v in rec.asked.items() if k.endswith("_block")}
    assert blocks == {
        "s1_b0_block": ["skip", "dwsep(kernel=3, expansion=3)", "big"],
        "s1_b1_block": ["skip", "dwsep(kernel=3, expansion=3)", "big"],
        "s2_b0_block": ["standard(kernel=3)", "skip"],
        "s2_b1_block": ["standard(kernel=3)", "skip"],
    }
    assert not any("family" in k for k in rec.asked)
    # 2 widths x 3^2 blocks in stage 1, 2^2 in stage 2; every choice path is reached
    from nasx.explore.sampling import enumerate_space

    assert space.size() == 72 == sum(1 for _ in enumerate_space(space))


def test_skip_is_the_identity_or_the_projection_a_shape_change_needs():
    """All skips: where the shape is kept there is no layer; where the width or the stride changes, a 1x1
    conv + BN without activation. Checked against the built module's parameters and ops by hand."""
    import torch

    skip = {f"s{i}_b{j}_block": "skip" for i in (1, 2) for j in (0, 1)}
    space = parse_space(CANDIDATES, "cand.yaml")
    same = space.sample(Fixed({**skip, "s1_out": 16}))
    assert [(type(layer).__name__, layer.out, layer.stride, layer.act) for layer in same.layers] == [
        ("Conv2d", 32, (2, 2), None)
    ]  # stage 1 kept 16 channels: nothing; stage 2 (16 -> 32, stride 2)
    wider = space.sample(Fixed({**skip, "s1_out": 24}))
    assert [(layer.out, layer.stride) for layer in wider.layers] == [(24, (1, 1)), (32, (2, 2))]
    module = nasx.build(wider)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs[1:3]] == [
        (16, 24, (1, 1), (1, 1)),
        (24, 32, (1, 1), (2, 2)),
    ]
    n_params = sum(p.numel() for p in module.parameters())
    stem, proj1, proj2 = 3 * 9 * 16 + 2 * 16, 16 * 24 + 2 * 24, 24 * 32 + 2 * 32
    head = 32 * 64 + 2 * 64 + 64 * 10 + 10
    assert n_params == stem + proj1 + proj2 + head
    acts = [m for m in module.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(acts) == 2  # the stem's and the head conv's: the projections have none
    assert tuple(module.eval()(torch.randn(1, 3, 16, 16)).shape) == (1, 10)


def test_candidates_with_choose_stage_ask_once_per_stage():
    space = parse_space(CANDIDATES.replace("name: cand", "name: cand\nchoose: stage"), "cand.yaml")
    rec = Fixed({"s1_block": "big"})
    arch = space.sample(rec)
    assert [k for k in rec.asked if k.endswith("_block")] == ["s1_block", "s2_block"]
    assert [layer.kernel for layer in arch.layers[:2]] == [5, 5]
    assert space.size() == 2 * 3 * 2


def test_candidate_arch_hash_survives_a_json_round_trip():
    space = parse_space(CANDIDATES, "cand.yaml")
    rng = random.Random(4)
    for _ in range(30):
        arch = space.random_arch(rng)
        assert nasx.Arch.from_json(arch.to_json()).content_hash() == arch.content_hash()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            ("kernel: 3, expansion: 3}", "kernel: [3, 5], expansion: 3}"),
            "candidates[1].kernel: a candidate's parameters are fixed",
        ),
        (("{type: dwsep, kernel: 3", "{type: hyperconv, kernel: 3"), "candidates[1].type: unknown block family"),
        (("name: big,", "name: skip,"), "candidates[2]: duplicate candidate name 'skip'"),
        (("  - skip\n", "  - skip\n  - skip\n"), "duplicate candidate name 'skip'"),
        (("  - skip\n", "  - {type: skip, kernel: 3}\n"), "candidates[0]: skip takes no parameters"),
        (("kernel: 3, expansion: 3}", "kernel: 3, out: 3}"), "candidates[1].out: out is set by the stage skeleton"),
        (("kernel: 3, expansion: 3}", "kernel: 3, expand: 3}"), "candidates[1].expand: unknown parameter"),
        (("kernel: 3, expansion: 3}", "kernel: 3, expansion: -3}"), "candidates[1].expansion: expected a number > 0"),
        (("  - skip\n", "  - identity\n"), "candidates[0]: expected skip or a mapping"),
        (
            ("candidates:\n  - skip", "families: {dwsep: {kernel: [3]}}\ncandidates:\n  - skip"),
            "families, candidates: give one of the two",
        ),
        (("{type: standard, kernel: 3}, skip]", "]"), "stages[1].candidates: expected a non-empty list"),
        (
            ("{type: standard, kernel: 3}", "{type: group_shuffle, groups: 3}"),
            "stages[1].candidates[0] (group_shuffle(groups=3)): does not build in stage 2",
        ),
    ],
)
def test_candidate_list_errors_name_file_key_and_problem(edit, expected):
    text = CANDIDATES.replace(*edit)
    assert text != CANDIDATES
    with pytest.raises(nasx.ConfigError) as e:
        parse_space(text, "cand.yaml")
    assert str(e.value).startswith("cand.yaml") and expected in str(e.value), str(e.value)


def test_a_space_needs_families_or_candidates():
    text = CANDIDATES[: CANDIDATES.index("candidates:\n  - skip")]
    with pytest.raises(nasx.ConfigError, match="cand.yaml: families: missing: give families"):
        parse_space(text, "cand.yaml")
    # every stage with its own list: no top-level choice needed
    own = text.replace("out: [16, 24]}", "out: [16, 24], candidates: [skip]}")
    assert parse_space(own, "own.yaml").size() == 2 * 1 * 2**2
