"""The service fuzzed from its own OpenAPI schema with schemathesis: every operation, valid and
invalid requests (25 examples each, so it stays under a minute on two cores). No answer may be a
5xx, every answer must match the documented status codes, content types and response schemas, and
a request the schema forbids must be refused.

Not checked: ``positive_data_acceptance`` (that every schema-valid request gets a 2xx). Some rules
cannot be written in JSON Schema (an answer needs a user id or a history), and JSON Schema
validators compare integers as floats, so a 64-bit bound like 2**63 - 1 also "admits" 2**63 + 500.
"""

from __future__ import annotations

import warnings

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from chronorec.data.eventlog import EventLog  # noqa: E402
from chronorec.models.baselines.popular import MostPopular  # noqa: E402
from chronorec.serving.app import create_app  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _app():
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="chronorec-fuzz-"))
    seqs = {1: [1, 2, 3, 4], 2: [2, 3, 4], 3: [5, 1], 4: [3, 3, 2]}
    MostPopular().fit(EventLog.from_sequences(seqs)).save(root / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_app(root / "model", state_dir=root / "state")  # no key: /events is fuzzed too


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_5xx_and_no_schema_violation(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
