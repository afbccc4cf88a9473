"""smollab: an autonomous, trustworthy research lab for small language models.

The building blocks (tasks, models, trainers, evaluators, statistics, reports) are a library;
``smollab run PROBLEM`` composes them into a whole study.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
