"""Titans neural long-term memory kind (registered as ``titans``).

``neural_memory.py`` holds the math, ``model.py`` the kind that attaches it to a base,
``meta_train.py`` the once-per-base outer loop whose result every org's memory starts from,
``rows.py`` the read-only serving form.
"""

from orgmem.memory.registry import register_memory_kind
from orgmem.memory.titans.config import TitansConfig
from orgmem.memory.titans.model import TitansMemory
from orgmem.memory.titans.neural_memory import MemoryState, NeuralMemory
from orgmem.memory.titans.rows import titans_rows

register_memory_kind("titans", TitansConfig, TitansMemory, rows=titans_rows)

__all__ = ["MemoryState", "NeuralMemory", "TitansConfig", "TitansMemory"]
