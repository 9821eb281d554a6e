"""The formulas of the tutorial notes (docs/tutorial-notes, summarised in docs/DESIGN.md section 4's
verdict table), each with the notes' own worked example, checked against an independent reference:
hand arithmetic written out here, the real torch module, and torch.utils.flop_counter.FlopCounterMode
(2 FLOPs per multiply-accumulate, conv and matmul only). nasx's numbers are never their own reference.

Shapes are written as the notes write them: H x W x C (HWC), stride 1 and "same" padding unless stated.
nasx is driven through its public path: an arch dict -> nasx.Arch.from_dict -> nasx.cost.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nasx
from nasx import ArchError

# ---- helpers -----------------------------------------------------------------------------------------


def plain_conv(out, k=3, **kw):
    """A bare conv: no BN, no activation, no bias (what the notes' formulas describe)."""
    return {"type": "conv", "out": out, "kernel": k, "bn": False, "act": None, "bias": False, **kw}


def nasx_report(input_chw, layers, convention="madds"):
    arch = nasx.Arch.from_dict({"format": "nasx-arch", "version": 1, "input": list(input_chw), "layers": layers})
    return nasx.cost(arch, convention)


def nasx_layer(input_chw, layer, convention="madds"):
    """nasx's Cost of a single layer."""
    return nasx_report(input_chw, [layer], convention).layers[0].cost


def torch_flops(module: nn.Module, input_chw) -> int:
    """FlopCounterMode's total for one forward pass of batch 1 (2 per MAdd, conv + matmul)."""
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.randn(1, *input_chw))
    return counter.get_total_flops()


def torch_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- note 000: the small CNN ---------------------------------------------------------------------------
# conv1: 32x32 input, 3x3, 64 out; 2x2 max pool; conv2: 16x16 input, 3x3, 128 out; fc 128 -> 10.
# The note never states Cin. We assume an RGB image (Cin = 3) for conv1; conv2 then reads conv1's 64
# channels (Cin = 64). The fc reads 128 features, so we put a global average pool between conv2 and fc.

NOTE000_CONV1 = dict(h=32, w=32, cin=3, k=3, cout=64)
NOTE000_CONV2 = dict(h=16, w=16, cin=64, k=3, cout=128)


def note000_formula(h, w, k, cout, **_):
    """Note 000's conv formula: FLOPs = input size x kernel size x output channels (no Cin anywhere)."""
    return h * w * k * k * cout


def note000_layers():
    return [
        plain_conv(64),
        {"type": "pool", "mode": "max", "kernel": 2, "stride": 2, "padding": 0},
        plain_conv(128),
        {"type": "gap"},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
    ]


def note000_torch():
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def test_note000_conv_formula_drops_cin():
    """Note 000, standard conv "FLOPs = 32x32x3x3x64". Convention: MAdds (docs/DESIGN.md section 4).
    The note's formula has no Cin: nasx's MAdds are the formula's value times Cin (3 for conv1, 64 for
    conv2), and the fc's 128 x 10 = 1,280 is right as it stands."""
    r = nasx_report((3, 32, 32), note000_layers())
    conv1, conv2, fc = r.layers[0].cost, r.layers[2].cost, r.layers[5].cost
    assert note000_formula(**NOTE000_CONV1) == 589_824
    assert note000_formula(**NOTE000_CONV2) == 294_912
    assert conv1.madds == 589_824 * 3 == 1_769_472
    assert conv2.madds == 294_912 * 64 == 18_874_368
    assert fc.madds == 128 * 10 == 1_280
    # the formula undercounts exactly by Cin, so it is wrong for every Cin > 1
    assert conv1.madds != note000_formula(**NOTE000_CONV1)


def test_note000_printed_numbers():
    """Note 000's printed numbers, checked by hand: its "32x32x3x3x64 = 1,179,648" is not the product it
    writes (that is 589,824) but twice it, i.e. multiply and add counted separately ("FLOPs = 2 x MAdds",
    the note says it counts both). Its conv2 line "16x16x3x3x128 = 1,179,648" repeats conv1's number: the
    product is 294,912 (x2 = 589,824). The total 2,360,576 is the sum of the printed lines.
    Convention: nasx "flops" (2 x MAdds). With Cin = 3, conv1's printed number x Cin is nasx's FLOPs, and
    also nasx's `exact` count with bias (note 004's 2*Cin*kh*kw*Cout*Hout*Wout)."""
    printed_conv1, printed_conv2, printed_fc, printed_total = 1_179_648, 1_179_648, 1_280, 2_360_576
    assert printed_conv1 == 2 * 32 * 32 * 3 * 3 * 64
    assert printed_conv2 != 16 * 16 * 3 * 3 * 128 and printed_conv2 != 2 * 16 * 16 * 3 * 3 * 128
    assert printed_conv1 + printed_conv2 + printed_fc == printed_total
    flops = nasx_layer((3, 32, 32), plain_conv(64), "flops")
    assert flops.ops == printed_conv1 * 3 == 3_538_944
    exact_with_bias = nasx_layer((3, 32, 32), plain_conv(64, bias=True), "exact")
    assert exact_with_bias.ops == printed_conv1 * 3


def test_note000_small_cnn_against_torch():
    """Note 000's whole CNN (Cin = 3, global pool before the fc). Convention: MAdds; FlopCounterMode
    reports 2 per MAdd over conv and matmul. Params: every learnable parameter (convs without bias,
    fc with bias), compared with the torch module's parameter count."""
    r = nasx_report((3, 32, 32), note000_layers())
    right_total = 3 * 589_824 + 64 * 294_912 + 1_280
    assert r.madds == right_total == 20_645_120
    assert r.madds != 2_360_576  # the note's total
    ref = note000_torch()
    assert torch_flops(ref, (3, 32, 32)) == 2 * r.madds
    assert torch_params(ref) == r.params == 3 * 9 * 64 + 64 * 9 * 128 + 128 * 10 + 10
    assert r.layers[-1].out_shape == (10,)


# ---- note 001: standard conv, MAdds / params / MAC ---------------------------------------------------

STANDARD_CASES = [  # (H, W, Cin, K, Cout): note 000's two convs, a 1x1 and a 5x5
    (32, 32, 3, 3, 64),
    (16, 16, 64, 3, 128),
    (28, 28, 48, 1, 96),
    (14, 14, 7, 5, 11),
]


@pytest.mark.parametrize("h,w,cin,k,cout", STANDARD_CASES)
def test_note001_standard_conv(h, w, cin, k, cout):
    """Note 001, standard conv. Convention: MAdds = H*W*Cout*K^2*Cin; params K^2*Cin*Cout (+Cout with
    bias); MAC (ShuffleNet V2 sense) = H*W*(Cin+Cout) + K^2*Cin*Cout for a bare conv (no BN, activation or
    bias). MAdds and params also against torch.nn.Conv2d + FlopCounterMode."""
    c = nasx_layer((cin, h, w), plain_conv(cout, k))
    assert c.madds == h * w * cout * k * k * cin
    assert c.params == k * k * cin * cout
    assert c.mac == h * w * (cin + cout) + k * k * cin * cout
    assert c.activations == h * w * cout
    ref = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
    assert torch_flops(ref, (cin, h, w)) == 2 * c.madds
    assert torch_params(ref) == c.params
    with_bias = nasx_layer((cin, h, w), plain_conv(cout, k, bias=True))
    assert with_bias.params == k * k * cin * cout + cout == torch_params(nn.Conv2d(cin, cout, k, bias=True))
    assert with_bias.madds == c.madds  # bias is not a multiply-accumulate


# ---- notes 002 and 004: exact FLOPs ------------------------------------------------------------------


def naive_conv_counting(x, weight, bias, pad):
    """Direct convolution in plain Python (stride 1, groups 1) that counts every multiplication and
    addition it performs: the independent reference for the `exact` convention."""
    cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad)).tolist()
    wl = weight.tolist()
    ho, wo = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    out = [[[0.0] * wo for _ in range(ho)] for _ in range(cout)]
    muls = adds = 0
    for o in range(cout):
        for i in range(ho):
            for j in range(wo):
                acc = None
                for c in range(cin):
                    for a in range(kh):
                        for b in range(kw):
                            p = xp[c][i + a][j + b] * wl[o][c][a][b]
                            muls += 1
                            if acc is None:
                                acc = p
                            else:
                                acc += p
                                adds += 1
                if bias is not None:
                    acc += float(bias[o])
                    adds += 1
                out[o][i][j] = acc
    return torch.tensor(out), muls + adds


@pytest.mark.parametrize("bias", [False, True])
def test_note002_exact_flops_counted_by_a_direct_convolution(bias):
    """Note 002: per output element Cin*K^2 multiplications and Cin*K^2 - 1 additions, so
    (2*Cin*K^2 - 1)*H*W*Cout without bias; note 004: + 1 addition with bias, 2*Cin*K^2*H*W*Cout.
    Convention: nasx "exact". The reference is a direct convolution that counts its own operations and
    whose output matches torch's conv."""
    torch.manual_seed(0)
    cin, h, w, cout, k = 2, 5, 4, 3, 3
    x = torch.randn(cin, h, w)
    ref = nn.Conv2d(cin, cout, k, padding=1, bias=bias)
    out, counted = naive_conv_counting(x, ref.weight.detach(), ref.bias.detach() if bias else None, 1)
    torch.testing.assert_close(out, ref(x.unsqueeze(0))[0].detach(), rtol=1e-4, atol=1e-5)
    formula = (2 * cin * k * k - (0 if bias else 1)) * h * w * cout
    assert counted == formula
    assert nasx_layer((cin, h, w), plain_conv(cout, k, bias=bias), "exact").ops == counted


@pytest.mark.parametrize("h,w,cin,k,cout", STANDARD_CASES)
def test_note002_exact_flops_without_bias(h, w, cin, k, cout):
    """Note 002: FLOPs = (2*Cin*K^2 - 1)*H*W*Cout without bias. Convention: nasx "exact" on a bare conv.
    For note 000's conv1 that is 53 * 32*32*64 = 3,473,408."""
    ops = nasx_layer((cin, h, w), plain_conv(cout, k), "exact").ops
    assert ops == (2 * cin * k * k - 1) * h * w * cout
    if (h, w, cin, k, cout) == (32, 32, 3, 3, 64):
        assert ops == 3_473_408


@pytest.mark.parametrize(
    "cin,h,w,cout,kh,kw,sh,sw,ph,pw",
    [
        (3, 32, 32, 64, 3, 3, 1, 1, 1, 1),
        (3, 224, 224, 64, 7, 7, 2, 2, 3, 3),
        (16, 20, 30, 8, 3, 5, 2, 1, 0, 2),
        (5, 9, 9, 4, 1, 3, 1, 2, 0, 1),
    ],
)
def test_note004_exact_flops_with_bias(cin, h, w, cout, kh, kw, sh, sw, ph, pw):
    """Note 004: FLOPs = 2*Cin*kh*kw*Cout*Hout*Wout with bias (non-square kernels, strides, paddings),
    Hout/Wout from torch's conv. Convention: nasx "exact" with bias=true, no BN, no activation."""
    ref = nn.Conv2d(cin, cout, (kh, kw), (sh, sw), (ph, pw), bias=True)
    _, _, ho, wo = ref(torch.zeros(1, cin, h, w)).shape
    layer = {
        "type": "conv",
        "out": cout,
        "kernel": [kh, kw],
        "stride": [sh, sw],
        "padding": [ph, pw],
        "bias": True,
        "bn": False,
        "act": None,
    }
    assert nasx_layer((cin, h, w), layer, "exact").ops == 2 * cin * kh * kw * cout * ho * wo


# ---- notes 000 and 001: depthwise-separable conv -----------------------------------------------------

DWSEP_CASES = [  # (H, W, Cin, K, Cout): note 000's conv2 shape, a MobileNetV1 layer, a 5x5 one
    (16, 16, 64, 3, 128),
    (56, 56, 128, 3, 128),
    (7, 7, 10, 5, 6),
]


def dwsep_layers(cin, k, cout):
    """Depthwise k x k (groups = Cin) then a 1x1 pointwise, both bare."""
    return [plain_conv(cin, k, groups=cin), plain_conv(cout, 1)]


@pytest.mark.parametrize("h,w,cin,k,cout", DWSEP_CASES)
def test_note001_depthwise_separable(h, w, cin, k, cout):
    """Note 001, depthwise-separable conv. Convention: MAdds: depthwise H*W*Cin*K^2, pointwise
    H*W*Cin*Cout; MAC 2*H*W*Cin + Cin*K^2 + Cin*Cout + H*W*(Cin+Cout); params Cin*K^2 + Cin*Cout.
    Against torch: a groups=Cin conv then a 1x1 conv, FlopCounterMode and parameter count."""
    r = nasx_report((cin, h, w), dwsep_layers(cin, k, cout))
    dw, pw = r.layers[0].cost, r.layers[1].cost
    assert dw.madds == h * w * cin * k * k
    assert pw.madds == h * w * cin * cout
    assert r.madds == h * w * cin * k * k + h * w * cin * cout
    assert r.mac == 2 * h * w * cin + cin * k * k + cin * cout + h * w * (cin + cout)
    ref = nn.Sequential(
        nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False)
    )
    assert torch_flops(ref, (cin, h, w)) == 2 * r.madds
    assert torch_params(ref) == r.params == cin * k * k + cin * cout


@pytest.mark.parametrize("h,w,cin,k,cout", DWSEP_CASES)
def test_note000_depthwise_separable_formula_is_wrong(h, w, cin, k, cout):
    """Note 000's depthwise-separable formulas: depthwise Cin*K*K*H*W*Cout and pointwise H*W*Cout.
    Verdict (docs/DESIGN.md): wrong. Its "depthwise" is a standard conv's MAdds (nasx, a groups=1 conv),
    Cout times the real depthwise; its "pointwise" drops Cin (Cin times too small). Convention: MAdds."""
    r = nasx_report((cin, h, w), dwsep_layers(cin, k, cout))
    right_dw, right_pw = r.layers[0].cost.madds, r.layers[1].cost.madds
    wrong_dw, wrong_pw = cin * k * k * h * w * cout, h * w * cout
    standard = nasx_layer((cin, h, w), plain_conv(cout, k)).madds
    assert wrong_dw == standard  # the "depthwise" formula is the standard conv's
    assert wrong_dw == right_dw * cout != right_dw
    assert wrong_pw * cin == right_pw != wrong_pw
    assert wrong_dw + wrong_pw != r.madds


# ---- notes 000 and 003: group conv -------------------------------------------------------------------


@pytest.mark.parametrize(
    "h,w,cin,k,cout,g",
    [
        (16, 16, 64, 3, 128, 1),
        (16, 16, 64, 3, 128, 4),
        (16, 16, 64, 3, 128, 64),
        (28, 28, 240, 1, 240, 3),  # ShuffleNet V1 g=3 1x1 group conv
        (14, 14, 64, 3, 64, 64),  # depthwise: g = Cin = Cout
    ],
)
def test_note003_group_conv(h, w, cin, k, cout, g):
    """Notes 000/003, group conv. Convention: MAdds H*W*K^2*Cin*Cout/g, params K^2*Cin*Cout/g; note 000's
    per-group form (Cin/g)*K*K*H*W*(Cout/g) summed over g groups is the same number. Against
    torch.nn.Conv2d(groups=g)."""
    c = nasx_layer((cin, h, w), plain_conv(cout, k, groups=g))
    assert c.madds == h * w * k * k * cin * cout // g == g * ((cin // g) * k * k * h * w * (cout // g))
    assert c.params == k * k * cin * cout // g
    ref = nn.Conv2d(cin, cout, k, padding=k // 2, groups=g, bias=False)
    assert torch_flops(ref, (cin, h, w)) == 2 * c.madds
    assert torch_params(ref) == c.params
    # `exact` (docs/DESIGN.md): 2*Cin/g*kh*kw - 1 per output element
    assert (
        nasx_layer((cin, h, w), plain_conv(cout, k, groups=g), "exact").ops == (2 * cin // g * k * k - 1) * h * w * cout
    )


# ---- note 001: partial conv (FasterNet) --------------------------------------------------------------


@pytest.mark.parametrize(
    "c,h,w,k,ratio,cp",
    [
        (64, 56, 56, 3, 0.25, 16),  # r = 1/4, FasterNet's default
        (40, 56, 56, 3, 0.25, 10),  # FasterNet-T0's first stage
        (96, 14, 14, 5, 0.5, 48),
    ],
)
def test_note001_partial_conv(c, h, w, k, ratio, cp):
    """Note 001, partial conv (FasterNet PConv), Cp = r*C. Convention: MAdds H*W*K^2*Cp^2; MAC
    H*W*2*Cp + K^2*Cp^2 (in-place slicing at inference: the C - Cp untouched channels are not moved);
    params K^2*Cp^2. MAdds and params against a torch Conv2d(Cp, Cp, K) on the first Cp channels."""
    pc = nasx.ops.PartialConv(kernel=k, ratio=ratio)
    assert pc.conv_channels(c) == cp
    layer = {"type": "pconv", "kernel": k, "ratio": ratio}
    cost = nasx_layer((c, h, w), layer)
    assert cost.madds == h * w * k * k * cp * cp
    assert cost.mac == h * w * 2 * cp + k * k * cp * cp
    assert cost.params == k * k * cp * cp
    ref = nn.Conv2d(cp, cp, k, padding=k // 2, bias=False)
    assert torch_flops(ref, (cp, h, w)) == 2 * cost.madds
    assert torch_params(ref) == cost.params
    # nasx's own module: same counts, and the untouched channels pass through unchanged
    module = nasx.build(nasx.Arch.from_dict({"input": [c, h, w], "layers": [layer]}))
    assert torch_flops(module, (c, h, w)) == 2 * cost.madds
    assert torch_params(module) == cost.params
    x = torch.randn(1, c, h, w)
    with torch.no_grad():
        y = module(x)
    assert y.shape == x.shape
    assert torch.equal(y[:, cp:], x[:, cp:])


def test_note001_partial_conv_mac_ignores_untouched_channels():
    """Note 001's PConv MAC H*W*2*Cp + K^2*Cp^2 depends on Cp only, not on C (in-place slicing).
    Convention: MAC in elements. C = 40, r = 1/4 and C = 80, r = 1/8 both give Cp = 10."""
    a = nasx_layer((40, 28, 28), {"type": "pconv", "kernel": 3, "ratio": 0.25})
    b = nasx_layer((80, 28, 28), {"type": "pconv", "kernel": 3, "ratio": 0.125})
    assert a.mac == b.mac == 28 * 28 * 2 * 10 + 9 * 100
    assert a.madds == b.madds == 28 * 28 * 9 * 100


# ---- note 003: channel-wise conv (ChannelNets) -------------------------------------------------------


def torch_channelwise(dc, pad, stride=1, groups=1):
    """Independent reference: a 3-D conv whose (dc, 1, 1) kernel slides along the channel axis."""

    class CW(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(1, groups, (dc, 1, 1), (stride, 1, 1), (pad, 0, 0), bias=False)

        def forward(self, x):
            y = self.conv(x.unsqueeze(1))
            return y.flatten(1, 2)

    return CW()


@pytest.mark.parametrize("c,h,w,dc", [(64, 14, 14, 7), (9, 2, 2, 3), (128, 7, 7, 3)])
def test_note003_channelwise_conv(c, h, w, dc):
    """Note 003, channel-wise conv (ChannelNets): one kernel of dc weights along the channel axis, shared
    over space. Convention: params dc; MAdds dc*m*H*W for m output channels (here m = C, "same" padding
    along channels, odd dc). Against a torch Conv3d with a (dc, 1, 1) kernel."""
    layer = {"type": "cwconv", "dc": dc, "bn": False, "act": None}
    cost = nasx_layer((c, h, w), layer)
    m = c
    assert cost.params == dc
    assert cost.madds == dc * m * h * w
    ref = torch_channelwise(dc, (dc - 1) // 2)
    with torch.no_grad():
        assert ref(torch.zeros(1, c, h, w)).shape == (1, m, h, w)
    assert torch_params(ref) == cost.params
    assert torch_flops(ref, (c, h, w)) == 2 * cost.madds
    # versus the 1x1 conv it replaces: C*m weights and C*m*H*W MAdds
    assert nasx_layer((c, h, w), plain_conv(m, 1)).madds == c * m * h * w > cost.madds


def test_note003_channelwise_worked_example():
    """Note 003's picture: n = 9 channels, input width 2, a kernel of size dc = 4 sliding along the
    channels without padding gives m = 9 - 4 + 1 = 6 outputs per position. Convention: params dc = 4,
    MAdds dc*m*H*W (here H = 1, W = 2: 4*6*2 = 48), against torch. nasx keeps m = C, which an even dc
    cannot do: it says so."""
    n, h, w, dc = 9, 1, 2, 4
    ref = torch_channelwise(dc, 0)
    with torch.no_grad():
        y = ref(torch.zeros(1, n, h, w))
    m = y.shape[1]
    assert m == 6
    assert torch_params(ref) == dc
    assert torch_flops(ref, (n, h, w)) == 2 * dc * m * h * w == 2 * 48
    with pytest.raises(ArchError, match="odd dc"):
        nasx_layer((n, h, w), {"type": "cwconv", "dc": dc, "bn": False, "act": None})


@pytest.mark.parametrize("c,g,dc", [(64, 2, 8), (96, 3, 7), (32, 4, 4)])
def test_note003_group_channelwise_conv(c, g, dc):
    """ChannelNets' group channel-wise conv (GCWConv): g kernels of dc weights, channel stride g, C outputs.
    Convention: params dc*g, MAdds dc*C*H*W. Against a torch Conv3d(1, g, (dc, 1, 1), stride (g, 1, 1))."""
    h = w = 7
    layer = {"type": "cwconv", "dc": dc, "groups": g, "bn": False, "act": None}
    cost = nasx_layer((c, h, w), layer)
    assert cost.params == dc * g
    assert cost.madds == dc * c * h * w
    ref = torch_channelwise(dc, max(0, -(-(dc - g) // 2)), g, g)
    with torch.no_grad():
        assert ref(torch.zeros(1, c, h, w)).shape == (1, c, h, w)
    assert torch_params(ref) == cost.params
    assert torch_flops(ref, (c, h, w)) == 2 * cost.madds


# ---- note 004: output size and parameters ------------------------------------------------------------

OUTPUT_SIZE_CASES = [  # (cin, h, w, cout, kh, kw, sh, sw, ph, pw)
    (3, 32, 32, 64, 3, 3, 1, 1, 1, 1),
    (3, 224, 224, 64, 7, 7, 2, 2, 3, 3),  # ResNet stem: 112x112
    (3, 227, 227, 96, 11, 11, 4, 4, 0, 0),  # AlexNet conv1: 55x55
    (8, 17, 10, 4, 3, 5, 2, 3, 0, 2),  # non-square everything, floors on both axes
    (1, 5, 5, 1, 5, 5, 1, 1, 0, 0),  # kernel = input: 1x1
]


@pytest.mark.parametrize("cin,h,w,cout,kh,kw,sh,sw,ph,pw", OUTPUT_SIZE_CASES)
def test_note004_output_size_and_params(cin, h, w, cout, kh, kw, sh, sw, ph, pw):
    """Note 004: Hout = floor((Hin + 2*ph - kh)/sh) + 1 (likewise W); params (kh*kw*Cin + 1)*Cout with
    bias (dilation 1, groups 1). Convention: params = every learnable parameter. Against torch.nn.Conv2d's
    output shape and parameter count."""
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    ref = nn.Conv2d(cin, cout, (kh, kw), (sh, sw), (ph, pw), bias=True)
    assert ref(torch.zeros(1, cin, h, w)).shape == (1, cout, ho, wo)
    assert torch_params(ref) == (kh * kw * cin + 1) * cout
    layer = {
        "type": "conv",
        "out": cout,
        "kernel": [kh, kw],
        "stride": [sh, sw],
        "padding": [ph, pw],
        "bias": True,
        "bn": False,
        "act": None,
    }
    r = nasx_report((cin, h, w), [layer])
    assert r.layers[0].out_shape == (cout, ho, wo)
    assert r.params == (kh * kw * cin + 1) * cout


@pytest.mark.parametrize("h,k,s,p,d", [(32, 3, 1, 2, 2), (33, 3, 2, 0, 3), (14, 5, 2, 4, 2), (7, 3, 1, 0, 1)])
def test_design_output_size_with_dilation(h, k, s, p, d):
    """docs/DESIGN.md section 4's general output size floor((H + 2p - d*(k-1) - 1)/s) + 1, which is note 004's
    formula at d = 1. Against torch.nn.Conv2d with dilation."""
    ho = (h + 2 * p - d * (k - 1) - 1) // s + 1
    ref = nn.Conv2d(2, 2, k, s, p, d, bias=False)
    assert ref(torch.zeros(1, 2, h, h)).shape[-1] == ho
    layer = plain_conv(2, k, stride=s, padding=p, dilation=d)
    assert nasx_report((2, h, h), [layer]).layers[0].out_shape == (2, ho, ho)
    if d == 1:
        assert ho == (h + 2 * p - k) // s + 1
