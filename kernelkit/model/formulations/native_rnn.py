"""Native formulations of the recurrent ops, sequences unrolled over their static time axis: RNNSequence,
GRUSequence, RNNCell and GRUCell (no MYRIAD 2021.4 stage), and LSTMSequence (the plugin has a stage, but refuses it when the
weights are computed or fed as inputs: "LSTMSequenceIE: AssertionFailed: inputs.size() == 3").

Each step is MatMul, Add and the gate activations (Sigmoid, Tanh, Relu), so the plugin compiles every
piece; the input projection X @ W^T of all steps is one MatMul. Gate orders are OpenVINO's: GRU z, r, h;
LSTM f, i, c, o. Sequence lengths must be constant; steps past a sequence's length keep its state and
write zeros, as the ops define. Outputs: Y [batch, directions, steps, hidden], then the last H (and C).
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_input, input_of

MAX_STEPS = 64           # an unrolled step is ~15 layers; longer sequences are left to a kernel
ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def _activation(c: Composer, name: str, x: Out) -> Out:
    kind = ACTIVATIONS.get(name.strip().lower())
    if kind is None:
        raise Refuse(f"activation {name!r} is not formulated")
    return c.unary(kind, x)


def _parse(layer, count: int) -> list[str]:
    names = [a.strip() for a in layer.attrs.get("activations", "").split(",") if a.strip()]
    defaults = {1: ["tanh"], 2: ["sigmoid", "tanh"], 3: ["sigmoid", "tanh", "tanh"]}[count]
    if layer.attrs.get("activations_alpha", "").strip() or layer.attrs.get("activations_beta", "").strip():
        raise Refuse("activations with alpha/beta are not formulated")
    return names or defaults


class _Sequence:
    """The shared part of the three ops: inputs, directions, lengths, and the step loop."""

    def __init__(self, model, layer, gates: int, states: int):
        self.model, self.layer = model, layer
        self.x = input_of(model, layer, 0)
        if self.x.precision not in FLOAT_PRECISIONS:
            raise Refuse("input X must be floating point")
        if any(d <= 0 for d in self.x.dims):
            raise Refuse("a dynamic or zero dimension")
        self.batch, self.steps, _ = self.x.dims
        if self.steps > MAX_STEPS:
            raise Refuse(f"{self.steps} steps: unrolling beyond {MAX_STEPS} makes a graph larger than a kernel")
        self.hidden = int(layer.attrs["hidden_size"])
        self.gates = gates
        direction = layer.attrs.get("direction", "forward").lower()
        self.directions = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]
        self.clip = float(layer.attrs.get("clip", "0") or 0)
        self.c = Composer(model, layer, self.x)
        first_weight = 1 + states + 1          # X, H (, C), seq_lengths, W, R, B
        self.w = input_of(model, layer, first_weight)
        self.r = input_of(model, layer, first_weight + 1)
        self.b = input_of(model, layer, first_weight + 2)
        self.initial = [input_of(model, layer, 1 + i) for i in range(states)]
        lengths = constant_input(model, layer, 1 + states)
        if lengths is None:
            raise Refuse("sequence lengths must be constant")
        self.lengths = np.broadcast_to(np.asarray(lengths, np.int64).reshape(-1), (self.batch,))

    def direction_part(self, value: Out, d: int) -> Out:
        """[directions, ...] -> this direction's [...]."""
        c = self.c
        part = c.slice(value, 0, d, d + 1)
        return c.reshape(part, part.dims[1:])

    def state(self, index: int, d: int) -> Out:
        """Initial H or C of direction d: [batch, hidden]."""
        c = self.c
        part = c.slice(self.initial[index], 1, d, d + 1)
        return c.reshape(part, [self.batch, self.hidden])

    def projections(self, d: int) -> list[Out]:
        """X @ W_d^T + B_d's input part for every step: [batch, gates*hidden] each."""
        c = self.c
        projected = c.matmul(self.x, self.direction_part(self.w, d), transpose_b=True)   # [batch, steps, G]
        return [c.reshape(c.slice(projected, 1, t, t + 1), [self.batch, self.gates * self.hidden])
                for t in range(self.steps)]

    def gate(self, value: Out, index: int) -> Out:
        return self.c.slice(value, 1, index * self.hidden, (index + 1) * self.hidden)

    def clipped(self, value: Out) -> Out:
        if self.clip > 0:
            return self.c.op("Clamp", [value], {"min": -self.clip, "max": self.clip})
        return value

    def mask(self, t: int) -> Out | None:
        """[batch, 1] booleans: step t is inside each sequence; None when every sequence has every step."""
        if (self.lengths >= self.steps).all():
            return None
        return self.c.greater(self.c.const((self.lengths > t).astype(np.float32).reshape(self.batch, 1)), 0.5)

    def run(self, step) -> list[Out]:
        values = self._run(step)
        from kernelkit.ir.graph import unused

        # An output nothing reads is left out (None): its layers would dangle.
        return [None if unused(self.model, self.layer, i) and i == 0 else v for i, v in enumerate(values)]

    def _run(self, step) -> list[Out]:
        """step(d, t, x_projection, states) -> new states (H first). Returns [Y, H_last (, C_last)]."""
        c = self.c
        ys, finals = [], []
        for d, backwards in enumerate(self.directions):
            xs = self.projections(d)
            states = [self.state(i, d) for i in range(len(self.initial))]
            outputs = [None] * self.steps
            order = range(self.steps - 1, -1, -1) if backwards else range(self.steps)
            for t in order:
                new = step(d, t, xs[t], states)
                inside = self.mask(t)
                if inside is not None:
                    new = [c.select(inside, n, s) for n, s in zip(new, states)]
                    outputs[t] = c.select(inside, new[0], 0.0)
                else:
                    outputs[t] = new[0]
                states = new
            # [batch, hidden] per step -> [batch, 1, steps, hidden]
            ys.append(c.concat([c.reshape(o, [self.batch, 1, 1, self.hidden]) for o in outputs], 2))
            finals.append(states)
        y = ys[0] if len(ys) == 1 else c.concat(ys, 1)
        last = [c.concat([c.reshape(f[i], [self.batch, 1, self.hidden]) for f in finals], 1)
                if len(finals) > 1 else c.reshape(finals[0][i], [self.batch, 1, self.hidden])
                for i in range(len(self.initial))]
        return [y] + last


def _rnn_step(seq, layer):
    """H' = f(x W^T + H R^T + B)."""
    (f,) = _parse(layer, 1)[:1]
    c = seq.c

    def step(d, t, x, states):
        gates = c.add(c.add(x, c.matmul(states[0], seq.direction_part(seq.r, d), transpose_b=True)),
                      seq.direction_part(seq.b, d))
        return [_activation(c, f, seq.clipped(gates))]

    return step


def _gru_step(seq, layer):
    """z, r = f(...); h~ = g(x Wh + (r * H) Rh + b) or, linear_before_reset, g(x Wh + r * (H Rh + Rbh) + Wbh);
    H' = (1 - z) h~ + z H."""
    f, g = _parse(layer, 2)[:2]
    linear_before_reset = layer.attrs.get("linear_before_reset", "false").lower() == "true"
    c = seq.c
    hidden = seq.hidden

    def step(d, t, x, states):
        h = states[0]
        r_weights = seq.direction_part(seq.r, d)                                  # [3h, hidden]
        bias = seq.direction_part(seq.b, d)                                       # [3h] or [4h]
        zr_weights = c.slice(r_weights, 0, 0, 2 * hidden)
        zr = c.add(c.add(c.slice(x, 1, 0, 2 * hidden), c.matmul(h, zr_weights, transpose_b=True)),
                   c.slice(bias, 0, 0, 2 * hidden))
        zr = _activation(c, f, seq.clipped(zr))
        z, r = seq.gate(zr, 0), seq.gate(zr, 1)
        h_weights = c.slice(r_weights, 0, 2 * hidden, 3 * hidden)
        x_h = seq.gate(x, 2)
        if linear_before_reset:
            recurrent = c.add(c.matmul(h, h_weights, transpose_b=True), c.slice(bias, 0, 3 * hidden, 4 * hidden))
            candidate = c.add(c.add(x_h, c.mul(r, recurrent)), c.slice(bias, 0, 2 * hidden, 3 * hidden))
        else:
            candidate = c.add(c.add(x_h, c.matmul(c.mul(r, h), h_weights, transpose_b=True)),
                              c.slice(bias, 0, 2 * hidden, 3 * hidden))
        candidate = _activation(c, g, seq.clipped(candidate))
        # (1 - z) h~ + z H = h~ + z (H - h~): one product, no 1 - z that loses z's small values.
        return [c.add(candidate, c.mul(z, c.sub(h, candidate)))]

    return step


def _lstm_step(seq, layer):
    """f, i, o = f(...), c~ = g(...): C' = f C + i c~, H' = o h(C')."""
    f, g, h_act = _parse(layer, 3)[:3]
    c = seq.c

    def step(d, t, x, states):
        h, cell = states
        gates = c.add(c.add(x, c.matmul(h, seq.direction_part(seq.r, d), transpose_b=True)),
                      seq.direction_part(seq.b, d))
        gates = seq.clipped(gates)
        forget, inp = _activation(c, f, seq.gate(gates, 0)), _activation(c, f, seq.gate(gates, 1))
        candidate, out = _activation(c, g, seq.gate(gates, 2)), _activation(c, f, seq.gate(gates, 3))
        new_cell = c.add(c.mul(forget, cell), c.mul(inp, candidate))
        return [c.mul(out, _activation(c, h_act, new_cell)), new_cell]

    return step


@formulation("rnnsequence", text="unrolled over the steps: MatMul, Add, the activation", multi_output=True)
def rnn_sequence(model, layer) -> list[Out]:
    seq = _Sequence(model, layer, 1, 1)
    return seq.run(_rnn_step(seq, layer))


@formulation("grusequence", text="unrolled over the steps: MatMul, Add, Sigmoid/Tanh gates", multi_output=True)
def gru_sequence(model, layer) -> list[Out]:
    seq = _Sequence(model, layer, 3, 1)
    return seq.run(_gru_step(seq, layer))


def _computed_weights(model, layer) -> bool:
    """The 2021.4 plugin takes LSTMSequence only with constant W, R and B (its inputs 4-6), and only when all
    three outputs (Y, Ho, Co) are read ("LSTMSequenceIE: AssertionFailed: !expired()" otherwise; probed)."""
    from kernelkit.ir.graph import unused

    return (any(constant_input(model, layer, i) is None for i in (4, 5, 6))
            or any(unused(model, layer, port) for port in range(3)))


@formulation("lstmsequence", text="unrolled over the steps: MatMul, Add, Sigmoid/Tanh gates (the plugin refuses "
             "LSTMSequence with weights that are not constant)", needed=_computed_weights, multi_output=True)
def lstm_sequence(model, layer) -> list[Out]:
    seq = _Sequence(model, layer, 4, 2)
    return seq.run(_lstm_step(seq, layer))


class _Cell(_Sequence):
    """One step of the op, as GRUCell/RNNCell (X [batch, input], H [batch, hidden], W, R, B without a
    direction axis): the sequence's step on its own."""

    def __init__(self, model, layer, gates: int):
        self.model, self.layer = model, layer
        self.x, h = input_of(model, layer, 0), input_of(model, layer, 1)
        if self.x.precision not in FLOAT_PRECISIONS or any(d <= 0 for d in self.x.dims + h.dims):
            raise Refuse("a float input of static shape is needed")
        self.batch = self.x.dims[0]
        self.hidden = int(layer.attrs["hidden_size"])
        self.gates = gates
        self.clip = float(layer.attrs.get("clip", "0") or 0)
        self.c = Composer(model, layer, self.x)
        self.h, self.w, self.r, self.b = h, *(input_of(model, layer, i) for i in (2, 3, 4))

    def direction_part(self, value: Out, d: int) -> Out:
        return value

    def once(self, step) -> Out:
        return step(0, 0, self.c.matmul(self.x, self.w, transpose_b=True), [self.h])[0]


@formulation("rnncell", text="MatMul, Add, the activation")
def rnn_cell(model, layer) -> Out:
    cell = _Cell(model, layer, 1)
    return cell.once(_rnn_step(cell, layer))


@formulation("grucell", text="MatMul, Add, Sigmoid/Tanh gates")
def gru_cell(model, layer) -> Out:
    cell = _Cell(model, layer, 3)
    return cell.once(_gru_step(cell, layer))
