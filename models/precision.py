"""Numeric precision of a model: one vocabulary for exporters, devices and the wire schemas."""

from __future__ import annotations

from enum import StrEnum

from models.errors import UserInputError


class Precision(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"

    @classmethod
    def parse(cls, value: str) -> Precision:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise UserInputError(
                f"unknown precision {value!r}; expected one of {', '.join(cls)}"
            ) from None
