"""Saving and loading models and training state as safetensors (no pickle anywhere).

* Weights: ``NAME.safetensors`` (the state dict) with ``NAME.json`` beside it (the model config),
  as diffusers stores ``config.json`` next to its weights.
* Training state: one safetensors file holding ``model.*``, ``ema.*`` and ``optim.*`` tensors, and
  the step counters and config in its string metadata, so an interrupted run resumes exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

__all__ = [
    "export_ema",
    "load_matching_weights",
    "load_training_state",
    "load_weights",
    "read_config",
    "save_training_state",
    "save_weights",
]


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata)
    os.replace(tmp, path)


def save_weights(
    model: nn.Module,
    path: str | os.PathLike,
    config: dict[str, Any] | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``state`` (default: ``model.state_dict()``) to ``path`` (.safetensors) and ``config``
    to the ``.json`` beside it."""
    path = Path(path)
    _atomic_save(state if state is not None else model.state_dict(), path, {"format": "pt"})
    if config is not None:
        _write_config(path, config)
    return path


def _write_config(path: Path, config: dict[str, Any]) -> None:
    path.with_suffix(".json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def export_ema(
    checkpoint: str | os.PathLike, path: str | os.PathLike, config: dict[str, Any] | None = None
) -> Path:
    """Write the EMA weights of a training-state file (:func:`save_training_state`) as a weights
    file, with ``config`` beside it: for shipping a step other than the best-scored one.

    The EMA covers the trainable parameters; buffers (e.g. BatchNorm statistics) come from the
    model's own state, as when the loop validates with :meth:`EMA.applied`."""
    with safe_open(str(checkpoint), framework="pt") as handle:  # not the optimiser moments
        keys = [k for k in handle.keys() if k.startswith(("model.", "ema."))]  # noqa: SIM118
        state = {k: handle.get_tensor(k) for k in keys}
    ema = _section(state, "ema.")
    if not ema:
        raise ValueError(f"{checkpoint}: no EMA weights in this file")
    weights = {**_section(state, "model."), **ema}
    path = Path(path)
    _atomic_save(weights, path, {"format": "pt"})
    if config is not None:
        _write_config(path, config)
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config JSON stored beside a weights file."""
    json_path = Path(path).with_suffix(".json")
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path}: config file missing beside the weights")
    return json.loads(json_path.read_text())


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a safetensors state dict into ``model`` (shapes and names must agree)."""
    state = load_file(str(path))
    model.load_state_dict(state, strict=strict)
    return model


def load_matching_weights(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Start ``model`` from the weights in ``path`` when ``model`` has gained modules since they
    were saved: every tensor in the file must exist in ``model`` with its shape. Returns the
    names ``model`` has that the file lacks (they keep their initialisation)."""
    result = model.load_state_dict(load_file(str(path)), strict=False)
    if result.unexpected_keys:
        raise ValueError(
            f"{path}: tensors the model does not have: {', '.join(result.unexpected_keys)}"
        )
    return list(result.missing_keys)


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of one part of a training-state file (``model.``, ``ema.``, ``optim.``), with
    the prefix removed."""
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
    return tensors


def save_training_state(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema_state: dict[str, torch.Tensor] | None,
    info: dict[str, Any],
) -> Path:
    """One file with model weights, EMA weights, optimiser moments and ``info`` (JSON metadata)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema_state is not None:
        tensors.update({f"ema.{k}": v for k, v in ema_state.items()})
    tensors.update(_optimizer_tensors(optimizer))
    groups = [
        {k: v for k, v in g.items() if k != "params"}
        for g in optimizer.state_dict()["param_groups"]
    ]
    metadata = {"info": json.dumps(info), "param_groups": json.dumps(groups)}
    _atomic_save(tensors, Path(path), metadata)
    return Path(path)


def load_training_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore model (and optimiser) from :func:`save_training_state`.

    Returns the EMA tensors (empty if none were saved) and the ``info`` dict.
    """
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if "info" not in metadata:
            raise ValueError(f"{path}: not a training-state file (no 'info' metadata)")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    model.load_state_dict(_section(tensors, "model."))
    ema = _section(tensors, "ema.")
    if optimizer is not None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in _section(tensors, "optim.").items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        groups = json.loads(metadata["param_groups"])
        current = optimizer.state_dict()["param_groups"]
        if len(groups) != len(current):
            raise ValueError(f"{path}: optimiser has {len(current)} groups, file {len(groups)}")
        for saved, live in zip(groups, current, strict=True):
            saved["params"] = live["params"]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    return ema, json.loads(metadata["info"])
