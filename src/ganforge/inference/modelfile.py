"""Read an ONNX file that may come from a stranger: one self-contained file, bounded metadata.

onnxruntime reads an initializer's bytes from any file its `external_data` names; releases
before 1.27 let `../` paths, absolute paths, symlinks and sparse tensors reach files outside
the model's folder. A ganforge export never has external data, so the inference side refuses
any tensor that points outside the file (and EPContext nodes, which name side files) before a
session exists, and hands onnxruntime the very bytes it checked: no second read of the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # onnx is imported lazily, where a model is read
    from onnx import GraphProto, ModelProto, NodeProto, TensorProto

# A ganforge generator is a few MB; protobuf itself cannot hold more than 2 GiB.
MAX_MODEL_BYTES = 2**31 - 1
# Every key and value of `metadata_props` together (ImageNet's 1000 class names: ~30 KB).
MAX_METADATA_BYTES = 256 * 1024


class UnsafeModelError(ValueError):
    """The file is not one self-contained ONNX model with bounded metadata."""


def read_model(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the ONNX file at `path`, checked by `check_model`.

    FileNotFoundError when it is not a regular file; UnsafeModelError naming what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise UnsafeModelError(f"{size} bytes, over the limit of {MAX_MODEL_BYTES} bytes")
    data = path.read_bytes()
    check_model(data)
    return data


def check_model(data: bytes) -> None:
    """Refuse external data, EPContext side files and metadata over MAX_METADATA_BYTES."""
    from google.protobuf.message import DecodeError
    from onnx import ModelProto

    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as err:
        raise UnsafeModelError(f"not a loadable ONNX model ({_first_line(err)})") from None
    size = sum(len(p.key.encode()) + len(p.value.encode()) for p in model.metadata_props)
    if size > MAX_METADATA_BYTES:
        raise UnsafeModelError(
            f"its metadata is {size} bytes, over the limit of {MAX_METADATA_BYTES}: "
            "not a ganforge export (export it again with `dvc repro export`)"
        )
    for where, tensor in _tensors(model):
        if tensor.data_location == tensor.EXTERNAL or len(tensor.external_data):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            raise UnsafeModelError(
                f"tensor {_short(where)} keeps its data in another file "
                f"({_short(location)}): ganforge loads only self-contained ONNX files; "
                "export it again without external data"
            )
    for graph in _graphs(model):
        for node in graph.node:
            if node.op_type == "EPContext":
                raise UnsafeModelError(
                    f"node {_short(node.name)} is an EPContext node (a compiled side file): "
                    "ganforge loads only plain ONNX generators"
                )


def _graphs(model: ModelProto) -> Iterator[GraphProto]:
    """Every graph of the model: the main one, subgraphs of If/Loop/Scan, functions'."""
    stack = [model.graph]
    stack += [info.algorithm for info in model.training_info]
    stack += [info.initialization for info in model.training_info]
    nodes = [node for function in model.functions for node in function.node]
    while stack or nodes:
        if stack:
            graph = stack.pop()
            yield graph
            nodes.extend(graph.node)
            continue
        node = nodes.pop()
        for attr in node.attribute:
            if attr.HasField("g"):
                stack.append(attr.g)
            stack.extend(attr.graphs)


def _tensors(model: ModelProto) -> Iterator[tuple[str, TensorProto]]:
    """(name, TensorProto) of every tensor the model holds, dense or inside a sparse one."""
    functions = [node for function in model.functions for node in function.node]
    for node in functions:
        yield from _attribute_tensors(node)
    for graph in _graphs(model):
        for tensor in graph.initializer:
            yield tensor.name, tensor
        for sparse in graph.sparse_initializer:
            yield sparse.values.name, sparse.values
            yield sparse.values.name, sparse.indices
        for node in graph.node:
            yield from _attribute_tensors(node)


def _attribute_tensors(node: NodeProto) -> Iterator[tuple[str, TensorProto]]:
    for attr in node.attribute:
        where = f"{node.name or node.op_type}.{attr.name}"
        if attr.HasField("t"):
            yield where, attr.t
        for tensor in attr.tensors:
            yield where, tensor
        sparse = list(attr.sparse_tensors)
        if attr.HasField("sparse_tensor"):
            sparse.append(attr.sparse_tensor)
        for item in sparse:
            yield where, item.values
            yield where, item.indices


def _short(text: str, width: int = 80) -> str:
    text = repr(str(text))[1:-1]
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return _short(text.splitlines()[0] if text else type(err).__name__, 200)
