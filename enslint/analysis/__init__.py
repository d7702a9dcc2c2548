"""Static analysis of one file: imports, module classes, member collections, member loops."""
