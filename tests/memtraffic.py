"""An independent memory-traffic (MAC) counter for built nasx models, measured with forward hooks.

It models an inference engine running the real torch module on a batch-1 input: every kernel reads all
the elements of its input tensors and its parameters, and writes its output (elements = numel of the
runtime tensors). Nothing here looks at nasx's op specs or cost formulas; it only sees torch modules and
the tensors flowing between them. Rules (nasx's MAC convention, docs/DESIGN.md section 4):

(a) conv + BN + activation are fused. A BatchNorm or activation module whose input tensor IS the output
    tensor of the immediately preceding executed conv/linear kernel (or of a BN / activation already fused
    into it) costs nothing itself. A fused BN adds to the kernel's parameter reads whatever folding it into
    the kernel adds: for a Conv2d / Linear whose output tensor is the BN's input (same layout) that is
    measured with torch.nn.utils.fusion (the folded parameter count minus the kernel's: Cout without
    bias, 0 with bias). When the BN sees a *reshaped view* of the kernel's output (ChannelNets'
    channel-wise conv: a Conv3d whose kernel is shared over all output channels) the per-channel scale
    cannot be folded into the shared weights, so the engine applies it as an epilogue: 2*C reads (scale
    and shift).
    Fusion stays inside one layer (one child of the root nn.Sequential) unless `fuse_across_layers=True`:
    that is nasx's scope, whose costs are per layer (see `test_cross_layer_fusion_is_not_modelled`).
(b) A stand-alone BN reads its input and its per-channel scale and shift (2*C, folded from its statistics
    and affine parameters) and writes its output; a stand-alone activation reads its input and writes its
    output.
(c) nasx.ops._torch Add / Multiply / Concat / ChannelSlice / ChannelShuffle and the pooling modules are
    kernels: they read their inputs and write their output. A kernel whose output is a view into one of
    its inputs (a channel slice) is taken as materialising that view: it reads and writes the viewed
    elements. The activation inside nasx's Add module is fused into the add (free).
(d) nn.Flatten and nn.Identity are views: 0.
(e) Containers (Sequential, GraphModule, PartialConv, ChannelwiseConv) cost nothing themselves: only the
    kernels inside them count, so PartialConv's slicing / pass-through and ChannelwiseConv's
    unsqueeze / reshape are aliasing.

Unknown leaf modules raise, so a new op cannot slip through uncounted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from nasx.ops import _torch as T

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.SiLU, nn.GELU, nn.Hardtanh)
KERNELS = (
    T.Add,
    T.Multiply,
    T.Concat,
    T.ChannelSlice,
    T.ChannelShuffle,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
)
VIEWS = (nn.Flatten, nn.Identity)
CONTAINERS = (nn.Sequential, nn.ModuleList, T.GraphModule, T.PartialConv, T.ChannelwiseConv)


@dataclass
class Record:
    module: str
    kind: str  # kernel | fused | view
    reads: int = 0
    writes: int = 0

    @property
    def mac(self) -> int:
        return self.reads + self.writes


@dataclass
class Traffic:
    mac: int = 0  # elements read + written
    activations: int = 0  # output elements of conv / linear kernels (RegNet)
    params_read: int = 0  # parameter elements the engine reads (weights after BN folding, scale/shift)
    records: list[Record] = field(default_factory=list)

    def by_layer(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            top = r.module.split(".", 1)[0]
            out[top] = out.get(top, 0) + r.mac
        return out


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)


def _key(t: torch.Tensor):
    """Identity of the elements a tensor addresses: same storage, same offset, same count (a reshape of a
    contiguous tensor keeps it; a strict slice does not)."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), t.numel())


def _shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _own_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters(recurse=False))


def _fold_extra(kernel: nn.Module, bn: nn.Module, same_layout: bool) -> int:
    """Parameters an inference engine reads in addition to the kernel's own once `bn` is fused into it."""
    channels = bn.num_features
    foldable = same_layout and (
        (isinstance(kernel, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and kernel.out_channels == channels)
        or (isinstance(kernel, nn.Linear) and kernel.out_features == channels)
    )
    if not foldable:
        return 2 * channels  # per-channel scale and shift applied as an epilogue
    # torch's own folding (what fuse_conv_bn_eval / fuse_linear_bn_eval do, without copying the module)
    fuse = fuse_linear_bn_weights if isinstance(kernel, nn.Linear) else fuse_conv_bn_weights
    fused = fuse(kernel.weight, kernel.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return sum(p.numel() for p in fused) - _own_params(kernel)


class _Counter:
    def __init__(self, root: nn.Module, fuse_across_layers: bool):
        self.traffic = Traffic()
        self.names = {m: n for n, m in root.named_modules()}
        self.scope = {}
        self.inside_add = set()
        for name, m in root.named_modules():
            self.scope[m] = "" if fuse_across_layers or not name else name.split(".", 1)[0]
            if isinstance(m, T.Add):
                self.inside_add.update(c for c in m.modules() if c is not m)
        # the fusion chain: output tensor of the last executed weighted kernel (or of what is fused into it)
        self.tail: torch.Tensor | None = None
        self.tail_kernel: nn.Module | None = None
        self.tail_scope = None
        self.tail_has_bn = False

    def _record(self, m, kind, reads=0, writes=0, params=0):
        self.traffic.records.append(Record(self.names[m], kind, reads, writes))
        self.traffic.mac += reads + writes
        self.traffic.params_read += params

    def _fusable(self, m, x: torch.Tensor) -> bool:
        return self.tail is not None and self.scope[m] == self.tail_scope and _key(x) == _key(self.tail)

    def hook(self, m, args, out):
        if isinstance(m, CONTAINERS) or m in self.inside_add:
            return
        ins = list(_tensors(args))
        if isinstance(m, VIEWS):
            self._record(m, "view")
            return
        if isinstance(m, WEIGHTED):
            self._record(m, "kernel", sum(t.numel() for t in ins) + _own_params(m), out.numel(), _own_params(m))
            self.traffic.activations += out.numel()
            self.tail, self.tail_kernel, self.tail_scope, self.tail_has_bn = out, m, self.scope[m], False
            return
        if isinstance(m, NORMS + ACTIVATIONS):
            (x,) = ins
            if self._fusable(m, x) and not (isinstance(m, NORMS) and self.tail_has_bn):
                extra = 0
                if isinstance(m, NORMS):
                    same_layout = x is self.tail or x.shape == self.tail.shape
                    extra = _fold_extra(self.tail_kernel, m, same_layout)
                    self.tail_has_bn = True
                self._record(m, "fused", extra, 0, extra)
                self.tail = out
                return
            # (b) stand-alone: input (+ a BN's per-channel scale and shift) read, output written
            scale_shift = 2 * m.num_features if isinstance(m, NORMS) else 0
            self._record(m, "kernel", x.numel() + scale_shift, out.numel(), scale_shift)
            self.tail = None
            return
        if isinstance(m, KERNELS):
            if any(_shares_storage(out, t) for t in ins):  # a view materialised: read and write the view
                reads = out.numel()
            else:
                reads = sum(t.numel() for t in ins)
            self._record(m, "kernel", reads + _own_params(m), out.numel(), _own_params(m))
            self.tail = None
            return
        raise TypeError(f"memtraffic does not know how to count {type(m).__name__} ({self.names[m]})")


def measure(model: nn.Module, x: torch.Tensor, fuse_across_layers: bool = False) -> Traffic:
    """Runs `model` on `x` (batch 1) in eval mode without gradients and counts its memory traffic."""
    if x.shape[0] != 1:
        raise ValueError("memtraffic counts per sample: pass a batch of 1")
    counter = _Counter(model, fuse_across_layers)
    handles = [m.register_forward_hook(counter.hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return counter.traffic
