"""A layer expands into a small graph of ops. `cost` and `build` both walk this one graph, so a block's
structure is written once."""

from __future__ import annotations

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

    def module(self):
        """The torch module running this graph (a single op's own module when the graph is one op)."""
        modules = [op.module(*(self.shapes[j] for j in inputs)) for op, inputs in self.nodes]
        if len(modules) == 1:
            return modules[0]
        from nasx.ops._torch import GraphModule

        return GraphModule(modules, [inputs for _, inputs in self.nodes])
