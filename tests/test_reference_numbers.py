"""docs/DESIGN.md section 7: published reference numbers (ImageNet, 3x224x224) of the zoo models that exist,
each with the counting convention that reproduces it.

Convention for every MAdds number below: multiply-accumulates of conv and linear layers, BN folded into
the preceding conv, bias and activations excluded (what the MobileNet and ResNet papers call "FLOPs").
Params: every learnable parameter, BN gamma/beta and the fc bias included (torch's parameter count).

Independent references: the published numbers; the built torch module's parameter count; and
FlopCounterMode on the built module (2 per MAdd over conv and matmul; it ignores BN, bias, activations,
pooling and adds, so half its total is exactly the MAdds convention above).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import nasx

# (model, published MAdds, exact?, published params, exact?, where the number comes from)
REFERENCES = [
    (
        "mobilenet_v1",
        569e6,
        False,
        4.2e6,
        False,
        "Howard et al. 2017, Table 8: 569M mult-adds, 4.2M params (1.0 MobileNet-224)",
    ),
    (
        "mobilenet_v2",
        300e6,
        False,
        3_504_872,
        True,
        "Sandler et al. 2018, Table 4: 300M MAdds; 3,504,872 params in the common PyTorch (torchvision) definition",
    ),
    (
        "resnet18",
        1.8e9,
        False,
        11.7e6,
        False,
        "He et al. 2016, Table 1: 1.8x10^9 FLOPs (= MAdds); 11.7M params (torchvision 11,689,512)",
    ),
    (
        "resnet50",
        4_089_184_256,
        True,
        25_557_032,
        True,
        "torchvision 'v1.5' layout (stride on the 3x3): conv + fc MAdds without the fc bias; params of "
        "torchvision's resnet50",
    ),
]


def close(value: int, reference: float, exact: bool) -> bool:
    return value == reference if exact else abs(value - reference) <= 0.01 * reference


@pytest.mark.parametrize(
    "name,madds,madds_exact,params,params_exact,source", REFERENCES, ids=[r[0] for r in REFERENCES]
)
def test_published_numbers(name, madds, madds_exact, params, params_exact, source):
    """nasx's MAdds (convention: MAdds, BN folded, no bias) and params (all learnable, BN included) match
    the published numbers: exactly where the reference is exact, else within 1%."""
    r = nasx.cost(name, "madds")
    assert tuple(r.arch.input) == (3, 224, 224)
    assert close(r.madds, madds, madds_exact), f"{name}: {r.madds:,} MAdds vs {madds:,.0f} ({source})"
    assert close(r.params, params, params_exact), f"{name}: {r.params:,} params vs {params:,.0f} ({source})"
    assert r.flops == 2 * r.madds


@pytest.mark.parametrize("name", [r[0] for r in REFERENCES])
def test_built_module_agrees(name):
    """The built torch module: its parameter count equals nasx's params, a (1, 3, 224, 224) input gives
    (1, 1000) logits, and FlopCounterMode's total (2 per MAdd) is twice nasx's MAdds."""
    r = nasx.cost(name)
    torch.manual_seed(0)
    module = nasx.build(name).eval()
    assert sum(p.numel() for p in module.parameters()) == r.params
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000)
    assert torch.isfinite(y).all()
    assert counter.get_total_flops() == 2 * r.madds


def test_resnet50_exact_counts_by_hand():
    """ResNet-50 (torchvision v1.5) counted by hand, layer by layer, as an arithmetic reference that does
    not go through torch or nasx. Convention: MAdds = conv + fc (no bias); params = conv weights + BN
    gamma/beta + fc weight and bias."""
    madds = params = 0

    def conv(cin, cout, k, hw_out):
        nonlocal madds, params
        madds += cin * cout * k * k * hw_out * hw_out
        params += cin * cout * k * k + 2 * cout  # weights + BN gamma/beta

    conv(3, 64, 7, 112)  # stem, then 3x3/2 max pool to 56
    cin, hw = 64, 56
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            out_hw = hw // s
            conv(cin, width, 1, hw)
            conv(width, width, 3, out_hw)  # v1.5: the stride is on the 3x3
            conv(width, 4 * width, 1, out_hw)
            if b == 0:
                conv(cin, 4 * width, 1, out_hw)  # projection shortcut
            cin, hw = 4 * width, out_hw
    madds += 2048 * 1000
    params += 2048 * 1000 + 1000
    assert madds == 4_089_184_256
    assert params == 25_557_032
    r = nasx.cost("resnet50")
    assert (r.madds, r.params) == (madds, params)
