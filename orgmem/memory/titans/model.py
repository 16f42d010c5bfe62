"""The ``titans`` memory kind: a ``NeuralMemory`` beside each chosen decoder layer.

Attaching registers a forward hook on each wrapped decoder layer that adds the memory's gated read
of the layer's input to the layer's output (base modules are never replaced, so ``detach`` restores
the base exactly). What is written when:

- train mode (``handle.train()``, consolidation): the forward pass WRITES the org's memory: the
  batch's rows, padding removed, are one stream appended in row order (test-time learning);
- eval mode (serving, evaluation) or inside ``no_write()``: the forward only reads;
- ``disabled()``: neither (exact base function).

Meta-parameters (projections, rates, gates) come from the base's meta-training and are frozen:
``param_groups()`` is empty. Saved: ``memory_state_dict`` = meta-parameters + memory weights (a
self-contained checkpoint, ~3 MB on SmolLM2); ``train_state_dict`` = momentum, the unfinished
chunk and the conv tail (what the next night needs to continue exactly).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from orgmem.errors import OrgmemError
from orgmem.memory.interface import MemoryKind, ParamGroup
from orgmem.memory.titans.config import TitansConfig
from orgmem.memory.titans.init_store import resolve_meta_init
from orgmem.memory.titans.neural_memory import MemoryState, NeuralMemory
from orgmem.models.layers import decoder_layers, model_device

logger = logging.getLogger(__name__)

_TRAIN_KEYS = ("pending_k", "pending_v", "pending_rates", "tail")


class TitansMemory(MemoryKind):
    """Titans memories on the chosen layers of a frozen Llama-family base."""

    config: TitansConfig

    def __init__(self, base, config: TitansConfig, layers: list[int]) -> None:
        super().__init__(base, config, layers)
        hidden = int(base.model.config.hidden_size)
        # the same modules, typed: ``memories`` registers them (state dict names), this reads them
        self.layer_memories: dict[str, NeuralMemory] = {
            str(i): NeuralMemory(hidden, **self.config.memory_kwargs()) for i in layers}
        self.memories = nn.ModuleDict(self.layer_memories)
        tensors, path = resolve_meta_init(base, self.config)
        if tensors is not None:
            self.load_meta(tensors, source=str(path))
            logger.info("titans meta-initialisation loaded", extra={"base": base.name, "path": str(path)})
        self.meta_init_path = path
        self.requires_grad_(False)  # meta-parameters are frozen outside meta-training
        self.to(model_device(base.model))
        self.write_enabled = True
        self.keep_graph = False  # meta-training backpropagates through the writes
        self._hooks: list = []
        self._mask: Tensor | None = None
        self.states: dict[str, MemoryState] = {}
        self.reset_memory()
        self.train(False)  # read-only until the engine puts the handle in train mode

    # ---- lifecycle -----------------------------------------------------------------------------
    def attach(self) -> None:
        model = self.base_model.model
        self._hooks.append(model.register_forward_pre_hook(self._capture_mask, with_kwargs=True))
        self._hooks.append(model.register_forward_hook(self._forget_mask, always_call=True))
        decoder = decoder_layers(model)
        for i in self.layers:
            self._hooks.append(decoder[i].register_forward_hook(self._hook(str(i)), with_kwargs=True))

    def detach(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._mask = None

    def param_groups(self) -> list[ParamGroup]:
        return []  # written by the forward pass; meta-parameters change only in meta-training

    def meta_parameters(self) -> list[nn.Parameter]:
        return list(self.memories.parameters())

    # ---- memory state --------------------------------------------------------------------------
    def reset_memory(self, batch: int = 1) -> None:
        """Empty memories: one stream (``batch=1``, an org) or ``batch`` independent episodes."""
        self.states = {k: m.initial_state(batch) for k, m in self.layer_memories.items()}
        if not self.keep_graph:
            self.states = {k: s.detach() for k, s in self.states.items()}

    def flush(self) -> None:
        """Write every layer's unfinished chunk now."""
        self.states = {k: self.layer_memories[k].flush(s) for k, s in self.states.items()}

    @property
    def writing(self) -> bool:
        return self.enabled and self.training and self.write_enabled

    @contextmanager
    def no_write(self) -> Iterator[None]:
        """Read-only forwards in train mode (e.g. rehearsal text that must not enter the memory)."""
        previous, self.write_enabled = self.write_enabled, False
        try:
            yield
        finally:
            self.write_enabled = previous

    # ---- forward -------------------------------------------------------------------------------
    def set_token_mask(self, mask: Tensor | None) -> None:
        """Which tokens (b, n) the next forwards may write, for callers that run decoder layers
        directly (packed rows, rehearsal text that must stay out of the memory); None = all."""
        self._mask = mask

    def _capture_mask(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        self._mask = mask if isinstance(mask, Tensor) and mask.ndim == 2 else None

    def _forget_mask(self, *args) -> None:
        self._mask = None  # a model call's padding mask must never apply to a later call

    def token_mask(self, x: Tensor) -> Tensor | None:
        """(b, n) real-token mask for hidden states ``x``; the last n columns under a KV cache."""
        mask = self._mask
        if mask is None or mask.shape[0] != x.shape[0] or mask.shape[1] < x.shape[1]:
            return None
        return mask[:, mask.shape[1] - x.shape[1]:].to(x.device).bool()

    def _hook(self, key: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict, output):
            if not self.enabled:
                return output
            x = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            new = out + self.apply_memory(key, x).to(out.dtype)
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return hook

    def apply_memory(self, key: str, x: Tensor) -> Tensor:
        """The memory's contribution for hidden states ``x``; writes them when ``writing``."""
        memory, state, mask = self.layer_memories[key], self.states[key], self.token_mask(x)
        if not self.writing:
            return memory(x, state, write=False)[0]
        streams = state.weights[0].shape[0]
        if streams == 1:
            y, state = self._write_stream(memory, state, x, mask)
        elif streams == x.shape[0]:
            y, state = memory(x, state, mask=mask)
        else:
            raise OrgmemError(f"titans layer {key}: {streams} memory streams cannot write a batch of "
                              f"{x.shape[0]} (reset_memory(batch) first)")
        self.states[key] = state if self.keep_graph else state.detach()
        return y

    @staticmethod
    def _write_stream(memory: NeuralMemory, state: MemoryState, x: Tensor, mask: Tensor | None
                      ) -> tuple[Tensor, MemoryState]:
        """One org stream: the rows' real tokens, in row order (padding never enters the memory)."""
        rows = []
        for r in range(x.shape[0]):
            keep = mask[r] if mask is not None else torch.ones(x.shape[1], dtype=torch.bool, device=x.device)
            y_r, state = memory(x[r: r + 1, keep], state)
            row = torch.zeros(x.shape[1:], dtype=y_r.dtype, device=x.device)
            row[keep] = y_r[0]
            rows.append(row)
        return torch.stack(rows), state

    # ---- saving --------------------------------------------------------------------------------
    def _stream_state(self, key: str) -> MemoryState:
        state = self.states[key]
        if state.weights[0].shape[0] != 1:
            raise OrgmemError(f"titans layer {key} holds {state.weights[0].shape[0]} episode memories, "
                              "not one org memory: nothing to save (reset_memory() first)")
        return state

    def memory_state_dict(self) -> dict[str, Tensor]:
        """``<layer>.meta.<param>`` (meta-parameters) and ``<layer>.weights.<j>`` (the memory)."""
        out: dict[str, Tensor] = {}
        for key, memory in self.layer_memories.items():
            out |= {f"{key}.meta.{n}": t.detach().clone() for n, t in memory.state_dict().items()}
            out |= {f"{key}.weights.{j}": w.detach().clone()
                    for j, w in enumerate(self._stream_state(key).weights)}
        return out

    def load_memory_state_dict(self, state: dict[str, Tensor]) -> None:
        """Strict: names missing, unexpected and mis-shaped keys. Momentum restarts at zero."""
        _check_keys(state, self.memory_state_dict(), "titans memory state")
        self.load_meta({k: v for k, v in state.items() if ".meta." in k}, source="memory state")
        fresh = {k: m.initial_state(1).detach() for k, m in self.layer_memories.items()}
        for key, s in fresh.items():
            s.weights = [state[f"{key}.weights.{j}"].to(s.weights[j]) for j in range(len(s.weights))]
        self.states = fresh

    def train_state_dict(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for key in self.memories:
            tensors = self._stream_state(key).to_tensors()
            out |= {f"{key}.{n}": t.clone() for n, t in tensors.items() if not n.startswith("weights.")}
        return out

    def load_train_state_dict(self, state: dict[str, Tensor]) -> None:
        if not state:
            return
        _check_keys(state, self.train_state_dict(), "titans train state", shapes=False)
        for key, s in self.states.items():
            dev = s.weights[0]
            s.momentum = [state[f"{key}.momentum.{j}"].to(dev) for j in range(len(s.momentum))]
            for name in _TRAIN_KEYS:
                setattr(s, name, state[f"{key}.{name}"].to(dev))

    def load_meta(self, tensors: dict[str, Tensor], *, source: str) -> None:
        """Meta-parameters from ``<layer>.meta.<param>`` (or ``<layer>.<param>``) tensors."""
        for key, memory in self.layer_memories.items():
            part = {}
            for name in memory.state_dict():
                t = tensors.get(f"{key}.meta.{name}", tensors.get(f"{key}.{name}"))
                if t is None:
                    raise OrgmemError(f"{source}: no tensor for titans layer {key} parameter {name!r}")
                part[name] = t
            try:
                memory.load_state_dict(part, strict=True)
            except RuntimeError as exc:
                raise OrgmemError(f"{source}: titans layer {key} does not fit ({exc})") from exc

    def meta_tensors(self) -> dict[str, Tensor]:
        """Meta-parameters as ``<layer>.<param>`` (what meta-training stores for the base)."""
        return {f"{k}.{n}": t.detach().clone()
                for k, m in self.layer_memories.items() for n, t in m.state_dict().items()}


def _check_keys(got: dict[str, Tensor], expected: dict[str, Tensor], what: str, shapes: bool = True) -> None:
    missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or unexpected:
        raise OrgmemError(f"{what}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    if shapes:
        bad = [k for k in expected if tuple(got[k].shape) != tuple(expected[k].shape)]
        if bad:
            raise OrgmemError(f"{what}: wrong shape for {bad[:5]} (e.g. {bad[0]}: {tuple(got[bad[0]].shape)} "
                              f"vs {tuple(expected[bad[0]].shape)})")
