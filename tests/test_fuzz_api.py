"""Schemathesis over the whole OpenAPI schema, against a real ``hwlat serve`` on PostgreSQL:
no answer is a 5xx, and every answer conforms to the schema (status, content type, headers,
body).

``make test`` runs a bounded number of examples per operation; ``scripts/fuzz_api.py``
(``python -m scripts.fuzz_api --max-examples 200`` in ``make bench``) runs the same scenario
with many more, adds Schemathesis' stateful phase, and writes its figures to
``docs/bench/fuzz.json``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import fuzz_api

pytestmark = pytest.mark.heavy


def test_no_answer_is_a_5xx_and_every_answer_fits_the_schema(tmp_path: Path) -> None:
    result = fuzz_api.run(tmp_path, max_examples=8, phases="examples,coverage,fuzzing")
    assert result["exit_code"] == 0, result["output_tail"]
    assert result["operations"] == result["operations_in_schema"] >= 29
    assert result["cases"] > 300
