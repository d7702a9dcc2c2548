"""Static analysis of one file: imports, module classes, member collections, member loops."""

from enslint.analysis.model import FileModel, build_model

__all__ = ["FileModel", "build_model"]
