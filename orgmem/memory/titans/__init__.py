"""Titans neural long-term memory kind (see ``neural_memory.py`` for the math)."""

from orgmem.memory.titans.neural_memory import MemoryState, NeuralMemory

__all__ = ["MemoryState", "NeuralMemory"]
