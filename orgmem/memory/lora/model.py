"""The ``lora`` memory kind: peft LoRA adapters injected into the wrapped layers' MLPs.

peft replaces the target ``nn.Linear`` modules in place (``LoraModel``); ``detach`` unloads them
(restoring the original modules) so the base object is left exactly as it was. ``lora_B`` starts
at zero, so at attach the model computes the base function.
"""

from __future__ import annotations

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraModel
from torch import Tensor

from orgmem.errors import OrgmemError
from orgmem.memory.interface import MemoryKind, ParamGroup
from orgmem.memory.lora.config import LoraMemoryConfig

ADAPTER = "orgmem"


class LoraMemory(MemoryKind):
    """LoRA adapters; their weights live inside the base's modules while attached."""

    config: LoraMemoryConfig

    def __init__(self, base, config: LoraMemoryConfig, layers: list[int]) -> None:
        super().__init__(base, config, layers)
        self._lora: LoraModel | None = None

    def _peft_config(self) -> LoraConfig:
        c = self.config
        return LoraConfig(r=c.r, lora_alpha=c.alpha, lora_dropout=0.0, target_modules=list(c.target_modules),
                          layers_to_transform=list(self.layers), layers_pattern="layers", bias="none")

    def attach(self) -> None:
        devices: list = []
        with torch.random.fork_rng(devices=devices):  # lora_A init must not consume the caller's RNG
            torch.manual_seed(0)
            self._lora = LoraModel(self.base_model.model, {ADAPTER: self._peft_config()}, ADAPTER)
        if not self._named():
            self.detach()
            raise OrgmemError(f"lora memory: no module named {self.config.target_modules} in layers "
                              f"{self.layers} of base {self.base_model.name!r}")

    def detach(self) -> None:
        if self._lora is not None:
            self._lora.unload()
            model = self.base_model.model
            for attr in ("peft_config", "_hf_peft_config_loaded"):
                if attr in vars(model):  # set on the instance by LoraModel; class defaults stay
                    delattr(model, attr)
            self._lora = None

    def set_enabled(self, enabled: bool) -> None:
        super().set_enabled(enabled)
        if self._lora is not None:
            (self._lora.enable_adapter_layers if enabled else self._lora.disable_adapter_layers)()

    def _named(self) -> dict[str, torch.nn.Parameter]:
        return {n.replace(f".{ADAPTER}.", "."): p for n, p in self.base_model.model.named_parameters()
                if "lora_" in n}

    def param_groups(self) -> list[ParamGroup]:
        params = list(self._named().values())
        for p in params:
            p.requires_grad_(True)
        return [ParamGroup("adapters", params, self.config.lr, 1)]

    def memory_state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self._named().items()}

    def load_memory_state_dict(self, state: dict[str, Tensor]) -> None:
        named = self._named()
        missing, unexpected = sorted(set(named) - set(state)), sorted(set(state) - set(named))
        if missing or unexpected:
            raise OrgmemError(f"lora memory state: missing {missing[:3]}, unexpected {unexpected[:3]}")
        with torch.no_grad():
            for k, p in named.items():
                if p.shape != state[k].shape:
                    raise OrgmemError(f"lora memory state: {k} has shape {tuple(state[k].shape)}, "
                                      f"expected {tuple(p.shape)}")
                p.copy_(state[k])
