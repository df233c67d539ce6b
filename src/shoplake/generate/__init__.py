"""Seeded, vectorised generator of realistic e-commerce feed files, optionally with defects."""

from shoplake.generate.report import GenerateReport, WrittenFile
from shoplake.generate.runner import generate

__all__ = ["GenerateReport", "WrittenFile", "generate"]
