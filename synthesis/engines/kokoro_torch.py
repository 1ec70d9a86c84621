"""Kokoro's decoder replayed in torch, so that a voice's timbre can be fitted by gradient.

The quality engine speaks through onnxruntime, which gives no gradients. To fit a timbre it needs the derivative of
the speaker cosine with respect to the style's first half, so this module reads the same checked graph and replays in
torch exactly the nodes the timbre reaches: the style's linear layers (the scale and shift of every AdaIN) and the
decoder beneath them. What the timbre does not reach (the text encoder, the prosody predictor, the harmonic source,
the F0 and energy convolutions) onnxruntime computes once per sentence, and it enters the replay as constants.

The int8 arithmetic is replayed as the graph does it, activations rounded to their dynamic 8-bit grid, with a
straight-through gradient: the forward pass is the graph's (to float rounding and the odd rounding flip; audio
correlation 0.99 with onnxruntime's), the gradient is the dequantized network's. The backward pass recomputes each
segment of nodes instead of keeping every activation (a 6 s sentence would otherwise hold ~16 GB).

The replay runs on the CPU; its onnxruntime pass uses CUDA when present. Moving the replay to a GPU has not been
tried (no GPU was lent to the session that wrote it): its shape arithmetic makes small CPU tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch.utils.checkpoint import checkpoint

from synthesis.engines.assets import onnx_session

# Where the prosody predictor's output meets the decoder: the aligned text features, and F0 and energy per frame.
PROSODY_OUTPUTS = ("/encoder/MatMul_1_output_0", "/encoder/Reshape_output_0", "/encoder/Reshape_1_output_0")
STYLE_INPUT = "style"
AUDIO_OUTPUT = "audio"
# Checkpointed segments (one extra forward pass in all). For the 6 s fitting sentence, 24 and 96 segments both peaked
# at 6-7 GB resident, the process's whole, against 16 GB with every activation kept: past a few, the count matters little.
SEGMENTS = 24

Tensor = torch.Tensor
Op = Callable[[dict[str, Any], list[Any]], Any]


@dataclass(frozen=True)
class Sentence:
    """One token sequence prepared for :meth:`TimbreDecoder.render`: the values the timbre does not change."""

    constants: dict[str, Tensor]
    prosody: Tensor  # (1, 128): the style's second half, which the replay does not differentiate


class TimbreDecoder:
    """The timbre's part of a Kokoro graph in torch. ``model_bytes`` are the checked bytes the engine speaks with."""

    def __init__(self, model_bytes: bytes, device: str | None = None, threads: int = 0) -> None:
        model = onnx.load_from_string(model_bytes)
        graph = model.graph
        self.nodes = _timbre_nodes(graph)
        made = {out for node in self.nodes for out in node.output}
        consumed = {name for node in self.nodes for name in node.input if name and name not in made}
        initializers = {init.name: init for init in graph.initializer}
        self.weights = {name: _tensor(numpy_helper.to_array(initializers[name]))
                        for name in consumed if name in initializers}
        self.inputs = sorted(consumed - set(self.weights) - {STYLE_INPUT})
        self.attributes = [{a.name: onnx.helper.get_attribute_value(a) for a in node.attribute} for node in self.nodes]
        self._segments = _segments(self.nodes, set(self.weights))
        # The same graph, with the replay's inputs exposed as outputs (all float tensors: convolution outputs and
        # normalized activations).
        for name in self.inputs:
            graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        self._session = onnx_session(model.SerializeToString(), device, threads)
        self._outputs = [out.name for out in graph.output]

    def sentence(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> Sentence:
        """Run the graph once for (1, n) padded token ids and a (1, 256) style; keep what the timbre cannot move."""
        values = dict(zip(self._outputs, self._session.run(None, {
            "tokens": tokens, STYLE_INPUT: style, "speed": np.array([speed], np.float32)})))
        return Sentence({name: torch.from_numpy(np.asarray(values[name], np.float32)) for name in self.inputs},
                        torch.from_numpy(np.asarray(style[:, 128:], np.float32)))

    def render(self, sentence: Sentence, timbre: Tensor) -> Tensor:
        """(128,) timbre -> (n,) audio at 24 kHz, differentiable in ``timbre``."""
        env: dict[str, Any] = {**sentence.constants, STYLE_INPUT: torch.cat([timbre.reshape(1, -1),
                                                                           sentence.prosody], dim=1)}
        for segment in self._segments:
            results = checkpoint(self._run, segment, *(env[name] for name in segment.needed), use_reentrant=False)
            env.update(zip(segment.kept, results))
            for name in segment.done:
                del env[name]
        return torch.clamp(env[AUDIO_OUTPUT].reshape(-1), -1.0, 1.0)

    def _run(self, segment: Segment, *values: Any) -> tuple:
        env = {**self.weights, **dict(zip(segment.needed, values))}
        for node, attributes in zip(self.nodes[segment.start:segment.stop], self.attributes[segment.start:segment.stop]):
            result = OPS[node.op_type](attributes, [env[name] if name else None for name in node.input])
            env.update(zip(node.output, result if isinstance(result, list) else [result]))
        return tuple(env[name] for name in segment.kept)


@dataclass(frozen=True)
class Segment:
    """Nodes [start, stop): the values they read from before, those they hand on, and those no later node reads."""

    start: int
    stop: int
    needed: tuple[str, ...]
    kept: tuple[str, ...]
    done: tuple[str, ...]


def _segments(nodes: Sequence[onnx.NodeProto], weights: set[str]) -> list[Segment]:
    last_use = {name: index for index, node in enumerate(nodes) for name in node.input if name}
    bounds = np.linspace(0, len(nodes), SEGMENTS + 1).astype(int)
    made_anywhere = {out for node in nodes for out in node.output}
    segments, live = [], {name for name in last_use if name not in weights and name not in made_anywhere}
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        made = {out for node in nodes[start:stop] for out in node.output}
        needed = sorted({name for node in nodes[start:stop] for name in node.input
                         if name and name not in made and name not in weights})
        kept = sorted(out for out in made if last_use.get(out, -1) >= stop or out == AUDIO_OUTPUT)
        live |= set(kept)
        done = sorted(name for name in live if last_use.get(name, len(nodes)) < stop and name != AUDIO_OUTPUT)
        live -= set(done)
        segments.append(Segment(start, stop, tuple(needed), tuple(kept), tuple(done)))
    return segments


def _timbre_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes on a path from the style input to the audio that does not pass through the prosody outputs."""
    timbre_reach = {STYLE_INPUT}
    for node in graph.node:  # ONNX stores nodes in topological order
        if any(name in timbre_reach for name in node.input):
            timbre_reach.update(out for out in node.output if out not in PROSODY_OUTPUTS)
    feeds_audio = {AUDIO_OUTPUT}  # other than through the prosody outputs, which the replay takes as they are
    for node in reversed(graph.node):
        if any(out in feeds_audio and out not in PROSODY_OUTPUTS for out in node.output):
            feeds_audio.update(node.input)
    return [node for node in graph.node
            if any(out in timbre_reach for out in node.output) and any(out in feeds_audio for out in node.output)]


def _tensor(value: np.ndarray) -> Tensor:
    """Initializers: weights and quantized data as float32 (int8 values are exact in it), shapes and axes as int64."""
    if value.dtype == np.bool_:
        return torch.from_numpy(value.copy())
    if value.dtype.kind == "f" or value.dtype.itemsize == 1:
        return torch.from_numpy(value.astype(np.float32))
    return torch.from_numpy(value.astype(np.int64))


# ----------------------------------------------------------------------------------------------- the ops it uses


def _quantize(attributes: dict, x: list) -> list:
    """DynamicQuantizeLinear: the 8-bit values the graph computes, as floats, with a straight-through gradient."""
    value = x[0]
    with torch.no_grad():
        low, high = torch.clamp(value.min(), max=0.0), torch.clamp(value.max(), min=0.0)
        scale = (high - low) / 255.0
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero = torch.clamp(torch.round(-low / scale), 0, 255)
    linear = value / scale + zero
    return [linear + (torch.clamp(torch.round(linear), 0, 255) - linear).detach(), scale, zero]


def _conv(attributes: dict, x: Tensor, weight: Tensor, bias: Tensor | None, transpose: bool = False) -> Tensor:
    pads = attributes.get("pads", [0, 0])
    stride, dilation = attributes.get("strides", [1])[0], attributes.get("dilations", [1])[0]
    groups = attributes.get("group", 1)
    if transpose:
        if pads[0] != pads[1]:
            raise NotImplementedError("asymmetric ConvTranspose padding")
        return F.conv_transpose1d(x, weight, bias, stride, pads[0], attributes.get("output_padding", [0])[0], groups,
                                  dilation)
    return F.conv1d(F.pad(x, [pads[0], pads[1]]), weight, bias, stride, 0, dilation, groups)


def _zero_point(x: list, index: int) -> Any:
    return x[index] if len(x) > index and x[index] is not None else 0.0


def _cast(attributes: dict, x: list) -> Tensor:
    if attributes["to"] in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        return x[0].float()
    if x[0].is_floating_point():  # integer-valued data on the quantized path stays float, so gradients pass
        return x[0]
    return x[0].bool() if attributes["to"] == onnx.TensorProto.BOOL else x[0].long()


def _divide(attributes: dict, x: list) -> Tensor:
    if x[0].is_floating_point() or x[1].is_floating_point():
        return x[0] / x[1]
    return torch.div(x[0], x[1], rounding_mode="trunc")


def _reshape(attributes: dict, x: list) -> Tensor:
    shape = [x[0].shape[i] if v == 0 else v for i, v in enumerate(int(v) for v in x[1].tolist())]
    return x[0].reshape(shape)


def _gather(attributes: dict, x: list) -> Tensor:
    axis, index = attributes.get("axis", 0), x[1]
    index = torch.where(index < 0, index + x[0].shape[axis], index)
    if index.dim() == 0:
        return x[0].select(axis, int(index))
    picked = torch.index_select(x[0], axis, index.reshape(-1))
    return picked.reshape(*x[0].shape[:axis], *index.shape, *x[0].shape[axis + 1:])


def _unsqueeze(attributes: dict, x: list) -> Tensor:
    out = x[0]
    for axis in sorted(int(v) for v in x[1].tolist()):
        out = out.unsqueeze(axis if axis >= 0 else axis + out.dim() + 1)
    return out


def _squeeze(attributes: dict, x: list) -> Tensor:
    if len(x) < 2 or x[1] is None:
        return x[0].squeeze()
    out = x[0]
    for axis in sorted((int(v) % out.dim() for v in x[1].tolist()), reverse=True):
        out = out.squeeze(axis)
    return out


def _slice(attributes: dict, x: list) -> Tensor:
    starts, ends = x[1].tolist(), x[2].tolist()
    axes = x[3].tolist() if len(x) > 3 and x[3] is not None else list(range(len(starts)))
    steps = x[4].tolist() if len(x) > 4 and x[4] is not None else [1] * len(starts)
    index = [slice(None)] * x[0].dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step < 1:
            raise NotImplementedError("Slice with a negative step")
        size = x[0].shape[axis]
        start, end = (max(0, min(size, v + size if v < 0 else v)) for v in (start, end))
        index[axis] = slice(start, end, step)
    return x[0][tuple(index)]


def _split(attributes: dict, x: list) -> list:
    if len(x) < 2 or x[1] is None:
        raise NotImplementedError("Split without its sizes")
    return list(torch.split(x[0], x[1].tolist(), dim=attributes.get("axis", 0)))


def _pad(attributes: dict, x: list) -> Tensor:
    pads = [int(v) for v in x[1].tolist()]
    half = len(pads) // 2
    torch_pads = [p for axis in reversed(range(half)) for p in (pads[axis], pads[axis + half])]
    while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]
    mode = attributes.get("mode", b"constant").decode()
    if mode == "constant":
        return F.pad(x[0], torch_pads, value=float(x[2]) if len(x) > 2 and x[2] is not None else 0.0)
    return F.pad(x[0], torch_pads, mode=mode)


def _resize(attributes: dict, x: list) -> Tensor:
    scales = x[2].tolist()
    if len(scales) != 3 or scales[:2] != [1.0, 1.0]:
        raise NotImplementedError(f"Resize scales {scales}")
    if attributes["mode"] == b"nearest":
        return F.interpolate(x[0], scale_factor=scales[2], mode="nearest")
    return F.interpolate(x[0], scale_factor=scales[2], mode="linear", align_corners=False)


def _scatter(attributes: dict, x: list) -> Tensor:
    out = x[0].clone()
    out[tuple(x[1][..., i] for i in range(x[1].shape[-1]))] = x[2]
    return out


OPS: dict[str, Op] = {
    "Add": lambda a, x: x[0] + x[1],
    "Sub": lambda a, x: x[0] - x[1],
    "Mul": lambda a, x: x[0] * x[1],
    "Div": _divide,
    "Pow": lambda a, x: torch.pow(x[0], x[1]),
    "Sqrt": lambda a, x: torch.sqrt(x[0]),
    "Exp": lambda a, x: torch.exp(x[0]),
    "Sin": lambda a, x: torch.sin(x[0]),
    "Cos": lambda a, x: torch.cos(x[0]),
    "Floor": lambda a, x: torch.floor(x[0]),
    "LeakyRelu": lambda a, x: F.leaky_relu(x[0], a.get("alpha", 0.01)),
    "Greater": lambda a, x: x[0] > x[1],
    "Equal": lambda a, x: x[0] == x[1],
    "Where": lambda a, x: torch.where(x[0], x[1], x[2]),
    "Cast": _cast,
    "ReduceMean": lambda a, x: x[0].mean(dim=tuple(a["axes"] if len(x) < 2 or x[1] is None else x[1].tolist()),
                                         keepdim=bool(a.get("keepdims", 1))),
    "Reshape": _reshape,
    "Concat": lambda a, x: torch.cat(list(x), dim=a["axis"]),
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Transpose": lambda a, x: x[0].permute(*a["perm"]),
    "Shape": lambda a, x: torch.tensor(list(x[0].shape)[a.get("start", 0):a.get("end", None)], dtype=torch.int64),
    "Slice": _slice,
    "Split": _split,
    "Expand": lambda a, x: x[0].expand(torch.broadcast_shapes(tuple(x[0].shape), tuple(int(v) for v in x[1].tolist()))),
    "Range": lambda a, x: torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype),
    "NonZero": lambda a, x: torch.nonzero(x[0]).T.contiguous(),
    "ScatterND": _scatter,
    "Pad": _pad,
    "Resize": _resize,
    "Conv": lambda a, x: _conv(a, x[0], x[1], x[2] if len(x) > 2 else None),
    "ConvTranspose": lambda a, x: _conv(a, x[0], x[1], x[2] if len(x) > 2 else None, transpose=True),
    "ConvInteger": lambda a, x: _conv(a, x[0] - _zero_point(x, 2), x[1] - _zero_point(x, 3), None),
    "MatMulInteger": lambda a, x: torch.matmul(x[0] - _zero_point(x, 2), x[1] - _zero_point(x, 3)),
    "DynamicQuantizeLinear": _quantize,
}
