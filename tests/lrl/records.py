"""Result records from canned responses, for tests that score without a model."""
from __future__ import annotations

from typing import Iterable

from lrl.domain import Problem, TransferDomain
from lrl.evaluation import result_record


def records_from(domain: TransferDomain, problems: Iterable[Problem], responses: Iterable[str], **meta) -> list[dict]:
    """Result records for responses given in the same order as the problems."""
    return [result_record(domain, p, r, **meta) for p, r in zip(problems, responses, strict=True)]
