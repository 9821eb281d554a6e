"""A define-by-run nasx space: a MobileNetV2-style network for 32x32 inputs whose widths are searched, in the
style of Channel-Bench-Macro's MobileNet space (Su et al., BCNet, CVPR 2021): a fixed skeleton of inverted
residual blocks, each block's hidden (expanded) width picked on its own from ratios of a base width.

Widths that YAML cannot tie are tied here: the stem's width is the first stage's width, one choice for both.

    nasx search --space examples/channel_bench_macro.py:mobilenet --budget 20M --n-trials 50

docs/define-by-run.md explains it line by line."""

INPUT = [3, 32, 32]  # CIFAR-10
CLASSES = 10
RATIOS = [0.25, 0.5, 0.75, 1.0]  # of each block's base hidden width
# (out channels or None for the tied first width, stride, base hidden width) per block
BLOCKS = [
    (None, 1, 96),
    (None, 1, 96),
    (48, 2, 192),
    (48, 1, 288),
    (96, 2, 288),
    (96, 1, 576),
    (160, 2, 576),
]


def mobilenet(trial):
    width = trial.suggest_int("width", 16, 32, step=8)  # the stem and the first stage: one width, tied
    stem = [{"type": "conv", "out": width, "kernel": 3, "stride": 1, "act": "relu6"}]
    layers = []
    for i, (out, stride, base) in enumerate(BLOCKS):
        ratio = trial.suggest_categorical(f"b{i}_ratio", RATIOS)  # each hidden width on its own
        layers.append({"type": "dwsep", "out": out or width, "stride": stride, "kernel": 3, "mid": round(base * ratio)})
    head = [
        {"type": "conv", "out": 640, "kernel": 1, "act": "relu6"},
        {"type": "gap"},
        {"type": "flatten"},
        {"type": "linear", "out": CLASSES},
    ]
    return {"input": INPUT, "stem": stem, "layers": layers, "head": head}
