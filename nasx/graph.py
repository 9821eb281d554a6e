"""A layer expands into a small graph of ops. `cost` and `build` both walk this one graph, so a block's
structure is written once."""

from __future__ import annotations

from typing import Any

from nasx.ops.base import Convention, Cost, Op, Shape


class Graph:
    """Ops in topological order. Node 0 is the input; every op has one output; the last node is the result."""

    __slots__ = ("shapes", "nodes")

    def __init__(self, in_shape: Shape):
        self.shapes: list[Shape] = [in_shape]
        self.nodes: list[tuple[Op, tuple[int, ...]]] = []

    def add(self, op: Op, *inputs: int) -> int:
        """Append `op` reading the given nodes; returns the new node's index. Checks shapes on the way."""
        self.shapes.append(op.out_shape(*(self.shapes[i] for i in inputs)))
        self.nodes.append((op, inputs))
        return len(self.shapes) - 1

    def shape(self, node: int) -> Shape:
        return self.shapes[node]

    @property
    def out_shape(self) -> Shape:
        return self.shapes[-1]

    def cost(self, conv: Convention) -> Cost:
        total = Cost()
        shapes = self.shapes
        for i, (op, inputs) in enumerate(self.nodes, 1):
            total += op.cost(tuple(shapes[j] for j in inputs), shapes[i], conv)
        return total

    def depth(self) -> int:
        """The most conv and linear layers (the ops whose outputs the activation count counts) on any path from
        the input to the result: how many weighted layers a signal passes through."""
        conv = Convention()
        shapes, deepest = self.shapes, [0] * len(self.shapes)
        for i, (op, inputs) in enumerate(self.nodes, 1):
            weighted = op.cost(tuple(shapes[j] for j in inputs), shapes[i], conv).activations > 0
            deepest[i] = max((deepest[j] for j in inputs), default=0) + weighted
        return deepest[-1]

    def overwritable(self) -> list[bool]:
        """For each op, whether it may write its output over its first input (an in-place activation). Only
        when nothing else needs that memory: it was made inside this graph (node 0 belongs to the caller),
        no other op reads it or a view of it, it is not (a view of) the result, and autograd does not keep
        it for the backward pass (a ReLU keeps its output)."""
        last = len(self.nodes)
        memory = list(range(last + 1))  # node -> the node whose memory its output lives in
        readers: dict[int, list[int]] = {0: []}  # memory -> the ops reading it (views read nothing)
        for i, (op, inputs) in enumerate(self.nodes, 1):
            readers[i] = []
            if op.aliases_input:
                memory[i] = memory[inputs[0]]
            else:
                for j in inputs:
                    readers[memory[j]].append(i)
        readers[memory[last]].append(-1)  # the caller reads the result
        kept = {i: op.keeps_output() for i, (op, _) in enumerate(self.nodes, 1)}
        out = []
        for i, (op, inputs) in enumerate(self.nodes, 1):
            m = memory[inputs[0]] if inputs else 0
            ok = op.can_work_in_place and m != 0 and readers[m] == [i] and not kept[m]
            out.append(ok)
            if ok:  # from here on node i's output is memory m
                for n in range(i, last + 1):
                    if memory[n] == i:
                        memory[n] = m
                readers[m] = readers.pop(i)
                kept[m] = op.keeps_output()
        return out

    def module(self) -> Any:
        """The torch module running this graph (a single op's own module when the graph is one op)."""
        modules = []
        for (op, inputs), overwrite in zip(self.nodes, self.overwritable(), strict=True):
            ins = [self.shapes[j] for j in inputs]
            modules.append(op.inplace_module(*ins) if overwrite else op.module(*ins))
        if len(modules) == 1:
            return modules[0]
        from nasx.ops._torch import GraphModule

        return GraphModule(modules, [inputs for _, inputs in self.nodes])
