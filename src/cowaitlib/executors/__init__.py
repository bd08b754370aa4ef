"""Executors side by side behind one protocol (see `base`)."""

from .base import Executor, get_executor

__all__ = ["Executor", "get_executor"]
