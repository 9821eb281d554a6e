"""How fast nasx-built networks run against the same networks written by hand in plain torch.

MobileNetV2, MobileNetV3-Large, ShuffleNetV2-1.0, ResNet-18 and MnasNet-A1 are written below independently of
nasx (torch.nn only, after the papers and torchvision's layouts; torchvision itself is not installable here).
For each, nasx's zoo architecture is built, the reference's weights are copied into it (parameter-holding
layers matched in execution order, shapes checked), and both outputs on one input must agree
(|diff| <= 1e-4 + 1e-3 |ref|) before anything is timed. Then all ten networks are timed interleaved in one run
(nasx.measure.latency.measure_interleaved: round-robin, ROUNDS rounds), so a slow spell hits both sides alike.
Prints per network nasx / reference median latency and the median ratio over the networks. Target: 1.00-1.05.

    python scripts/bench_build_fidelity.py [--threads N] [--rounds 5] [--time 1.0] [--input 224]
    python scripts/bench_build_fidelity.py --rounds 1 --time 0.05 --input 64   # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nasx  # noqa: E402
from nasx.arch import zoo_arch
from nasx.measure.device import default_threads  # noqa: E402
from nasx.measure.latency import measure_interleaved  # noqa: E402


def conv_bn(cin, cout, k, s=1, groups=1, act=nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def make_divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SE(nn.Module):
    def __init__(self, c, squeeze, gate=nn.Sigmoid):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.act, self.gate = nn.ReLU(), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project, residual when shapes allow."""

    def __init__(self, cin, exp, cout, k, s, act=nn.ReLU, se=None):
        super().__init__()
        layers = [] if exp == cin else [conv_bn(cin, exp, 1, act=act)]
        layers.append(conv_bn(exp, exp, k, s, groups=exp, act=act))
        if se is not None:
            layers.append(se)
        layers.append(conv_bn(exp, cout, 1, act=None))
        self.body, self.residual = nn.Sequential(*layers), s == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def classifier(cin, hidden=None, act=nn.ReLU):
    layers = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if hidden:
        layers += [nn.Linear(cin, hidden), act()]
        cin = hidden
    return nn.Sequential(*layers, nn.Dropout(0.2), nn.Linear(cin, 1000))


def mobilenet_v2():
    layers, cin = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)], 32
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for i in range(n):
            layers.append(MBConv(cin, cin * t, c, 3, s if i == 0 else 1, act=nn.ReLU6))
            cin = c
    return nn.Sequential(*layers, conv_bn(320, 1280, 1, act=nn.ReLU6), classifier(1280))


def mobilenet_v3_large():
    HS, RE = nn.Hardswish, nn.ReLU
    cfg = (
        (3, 16, 16, False, RE, 1),
        (3, 64, 24, False, RE, 2),
        (3, 72, 24, False, RE, 1),
        (5, 72, 40, True, RE, 2),
        (5, 120, 40, True, RE, 1),
        (5, 120, 40, True, RE, 1),
        (3, 240, 80, False, HS, 2),
        (3, 200, 80, False, HS, 1),
        (3, 184, 80, False, HS, 1),
        (3, 184, 80, False, HS, 1),
        (3, 480, 112, True, HS, 1),
        (3, 672, 112, True, HS, 1),
        (5, 672, 160, True, HS, 2),
        (5, 960, 160, True, HS, 1),
        (5, 960, 160, True, HS, 1),
    )
    layers, cin = [conv_bn(3, 16, 3, 2, act=HS)], 16
    for k, exp, c, se, act, s in cfg:
        squeeze = SE(exp, make_divisible(exp // 4), nn.Hardsigmoid) if se else None
        layers.append(MBConv(cin, exp, c, k, s, act=act, se=squeeze))
        cin = c
    return nn.Sequential(*layers, conv_bn(160, 960, 1, act=HS), classifier(960, 1280, HS))


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        mid = cout // 2
        self.stride = stride
        if stride == 2:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, 2, groups=cin, act=None), conv_bn(cin, mid, 1))
        b_in = cin if stride == 2 else mid
        self.branch2 = nn.Sequential(
            conv_bn(b_in, mid, 1), conv_bn(mid, mid, 3, stride, groups=mid, act=None), conv_bn(mid, mid, 1)
        )

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)  # channel shuffle, 2 groups


def shufflenet_v2_1_0():
    layers, cin = [conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)], 24
    for repeats, c in ((4, 116), (8, 232), (4, 464)):
        for i in range(repeats):
            layers.append(ShuffleUnit(cin, c, 2 if i == 0 else 1))
            cin = c
    return nn.Sequential(*layers, conv_bn(464, 1024, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=None))
        self.down = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.body(x) + (x if self.down is None else self.down(x)))


def resnet18():
    layers, cin = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for c, s in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, c, s), BasicBlock(c, c, 1)]
        cin = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


def mnasnet_a1():
    # Tan et al. 2019, Figure 7(a): SepConv, then MBConv6 k3 x2, MBConv3 k5 SE x3, MBConv6 k3 x4, MBConv6 k3 SE
    # x2, MBConv6 k5 SE x3, MBConv6 k3 x1; SE squeezes to a quarter of the block's input channels (the TF release)
    layers = [conv_bn(3, 32, 3, 2), conv_bn(32, 32, 3, groups=32), conv_bn(32, 16, 1, act=None)]
    cin = 16
    for t, k, c, n, s, se in (
        (6, 3, 24, 2, 2, False),
        (3, 5, 40, 3, 2, True),
        (6, 3, 80, 4, 2, False),
        (6, 3, 112, 2, 1, True),
        (6, 5, 160, 3, 2, True),
        (6, 3, 320, 1, 1, False),
    ):
        for i in range(n):
            squeeze = SE(cin * t, max(1, cin // 4)) if se else None
            layers.append(MBConv(cin, cin * t, c, k, s if i == 0 else 1, se=squeeze))
            cin = c
    return nn.Sequential(*layers, conv_bn(320, 1280, 1), classifier(1280))


NETWORKS = {
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": mobilenet_v3_large,
    "shufflenet_v2_1.0": shufflenet_v2_1_0,
    "resnet18": resnet18,
    "mnasnet_a1": mnasnet_a1,
}


def _execution_order(module, x):
    """Parameter- or buffer-holding leaf modules in the order a forward pass runs them."""
    order, hooks = [], []
    for m in module.modules():
        if not list(m.children()) and (list(m.parameters(recurse=False)) or list(m.buffers(recurse=False))):
            hooks.append(m.register_forward_hook(lambda mod, i, o: order.append(mod)))
    with torch.no_grad():
        module(x)
    for h in hooks:
        h.remove()
    seen, out = set(), []
    for m in order:
        if id(m) not in seen:
            seen.add(id(m))
            out.append(m)
    return out


def _signature(m):
    return type(m).__name__, tuple((k, tuple(v.shape)) for k, v in m.state_dict().items())


def copy_weights(ref, built, x, window: int = 4) -> None:
    """Copy the reference's weights into the nasx module: layers matched in execution order, each to the first
    not yet used layer of the same type and shapes among the next `window` (branches may run in another order)."""
    src, dst = _execution_order(ref, x), _execution_order(built, x)
    if len(src) != len(dst):
        raise SystemExit(f"layer counts differ: reference {len(src)}, nasx {len(dst)}")
    used = [False] * len(dst)
    for i, m in enumerate(src):
        j = next(
            (
                j
                for j in range(max(0, i - window), min(len(dst), i + window + 1))
                if not used[j] and _signature(dst[j]) == _signature(m)
            ),
            None,
        )
        if j is None:
            raise SystemExit(f"no nasx layer matches reference layer {i} {_signature(m)}")
        used[j] = True
        dst[j].load_state_dict(m.state_dict())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--time", type=float, default=1.0, help="seconds per network per round (default 1)")
    ap.add_argument("--input", type=int, default=224, help="input resolution (default 224)")
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(NETWORKS))
    args = ap.parse_args()
    shape = (3, args.input, args.input)
    names = args.only.split(",") if args.only else list(NETWORKS)
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0))
    pairs = []
    for name in names:
        torch.manual_seed(0)
        ref = NETWORKS[name]().eval()
        for m in ref.modules():  # non-trivial BN statistics, so a swapped BN would show in the outputs
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        arch = dataclasses.replace(zoo_arch(name), input=shape)
        built = nasx.build(arch).eval()
        copy_weights(ref, built, x)
        with torch.no_grad():
            a, b = ref(x), built(x)
        diff = float((a - b).abs().max())
        if a.shape != b.shape or not torch.allclose(b, a, rtol=1e-3, atol=1e-4):
            print(f"{name}: outputs differ (max |diff| {diff:.3g}); not timed", file=sys.stderr)
            return 1
        print(f"{name}: outputs equal (max |diff| {diff:.2e}), {sum(p.numel() for p in ref.parameters()):,} params")
        pairs.append((name, built, ref))
    modules = [m for _, built, ref in pairs for m in (built, ref)]
    timed = measure_interleaved(modules, shape, rounds=args.rounds, time_s=args.time, threads=args.threads)
    ratios = []
    print(
        f"\n{'network':<20} {'nasx ms':>9} {'reference ms':>13} {'ratio':>7}   ({args.rounds} interleaved rounds, "
        f"{args.threads} threads, {args.input}x{args.input})"
    )
    for i, (name, _, _) in enumerate(pairs):
        ours = statistics.median(r["median_ms"] for r in timed[2 * i])
        theirs = statistics.median(r["median_ms"] for r in timed[2 * i + 1])
        ratios.append(ours / theirs)
        print(f"{name:<20} {ours:9.3f} {theirs:13.3f} {ours / theirs:7.3f}")
    print(f"{'median ratio':<20} {'':9} {'':13} {statistics.median(ratios):7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
