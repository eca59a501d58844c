"""Tiny hand-made ONNX generators with ganforge metadata, for the hostile-input tests (no torch).

`image_model`: z [b, nz] -> MatMul W [nz, C·H·W] -> Reshape -> image [b, C, H, W] (+ 0·label
when conditional). `with_external_data` moves W's bytes to another file, as an attacker would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def image_model(
    path: Path,
    nz: int = 4,
    shape: tuple[int, ...] = (1, 4, 4),
    num_classes: int = 0,
    props: dict[str, str] | None = None,
    z_dims: list | None = None,
    out_dims: list | None = None,
) -> Path:
    """Write a ganforge-looking generator to `path`; `props` override its metadata."""
    values = int(np.prod(shape))
    weight = numpy_helper.from_array(
        np.linspace(-1, 1, nz * values, dtype=np.float32).reshape(nz, values), "W"
    )
    target = numpy_helper.from_array(np.array([-1, *shape], dtype=np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["z", "W"], ["flat"])]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, z_dims or ["batch", nz])]
    if num_classes:
        zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
        axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
        nodes += [
            helper.make_node("Cast", ["label"], ["label_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["label_f", "axes"], ["label_col"]),
            helper.make_node("Mul", ["label_col", "zero"], ["nothing"]),
            helper.make_node("Add", ["flat", "nothing"], ["flat2"]),
            helper.make_node("Reshape", ["flat2", "shape"], ["image"]),
        ]
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
        inits = [weight, target, zero, axes]
    else:
        nodes.append(helper.make_node("Reshape", ["flat", "shape"], ["image"]))
        inits = [weight, target]
    kind = "image" if len(shape) == 3 else "points"
    out_name = "image"
    output = helper.make_tensor_value_info(
        out_name, TensorProto.FLOAT, out_dims or ["batch", *shape]
    )
    graph = helper.make_graph(nodes, "g", inputs, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    meta = {
        "nz": str(nz),
        "sample_shape": json.dumps(list(shape)),
        "kind": kind,
        "num_classes": str(num_classes),
        "class_names": json.dumps([f"c{i}" for i in range(num_classes)]),
        "value_range": json.dumps([-1.0, 1.0] if kind == "image" else None),
        "arch": "handmade",
        "inputs": json.dumps(["z", "label"] if num_classes else ["z"]),
        "output": out_name,
    }
    meta.update(props or {})
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def with_external_data(model: Path, dest: Path, location: str, sparse: bool = False) -> Path:
    """A copy of `model` whose weight W is read from `location` (external data).

    `sparse`: W becomes a sparse initializer whose values live in `location` instead.
    """
    proto = onnx.load(str(model))
    graph = proto.graph
    weight = next(t for t in graph.initializer if t.name == "W")
    if sparse:
        dense = numpy_helper.to_array(weight)
        graph.initializer.remove(weight)
        values = numpy_helper.from_array(dense.reshape(-1), "W_values")
        indices = numpy_helper.from_array(np.arange(dense.size, dtype=np.int64), "W_indices")
        sparse_tensor = helper.make_sparse_tensor(values, indices, list(dense.shape))
        sparse_tensor.values.name = "W"
        graph.sparse_initializer.append(sparse_tensor)
        weight = graph.sparse_initializer[0].values
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    onnx.save(proto, str(dest))
    return dest
