"""LoRA memory kind via peft (registered as ``lora``): the baseline. ``config.py``, the training
form (``model.py``, peft adapters) and the serving form (``rows.py``)."""

from orgmem.memory.lora.config import LoraMemoryConfig
from orgmem.memory.lora.model import LoraMemory
from orgmem.memory.lora.rows import lora_rows
from orgmem.memory.registry import register_memory_kind

register_memory_kind("lora", LoraMemoryConfig, LoraMemory, rows=lora_rows)

__all__ = ["LoraMemory", "LoraMemoryConfig"]
