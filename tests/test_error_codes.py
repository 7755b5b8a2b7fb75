"""One list of error codes for both sides: every domain error of the service answers with an
``ErrorCode``, and the client raises the class that code stands for."""

from __future__ import annotations

import json

import pytest

import latency_service.predictors.service  # noqa: F401  (registers its domain errors)
from latency_api import AccessDenied, ErrorCode, LeaseLost, NotFound, ServiceError
from latency_service import errors
from latency_service.http_errors import domain_response


def _domain_errors() -> list[type[errors.DomainError]]:
    found: list[type[errors.DomainError]] = []
    pending: list[type[errors.DomainError]] = [errors.DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return found


EXPECTED: dict[ErrorCode, type[ServiceError]] = {
    ErrorCode.not_found: NotFound,
    ErrorCode.not_authenticated: AccessDenied,
    ErrorCode.forbidden: AccessDenied,
    ErrorCode.lease_lost: LeaseLost,
}


def test_every_domain_error_has_its_own_error_code() -> None:
    classes = _domain_errors()
    assert len(classes) > 10
    codes = [cls.code for cls in classes]
    assert all(isinstance(code, ErrorCode) for code in codes)
    assert len(set(codes)) == len(codes), codes


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda cls: cls.__name__)
def test_the_client_raises_what_each_domain_error_means(cls: type[errors.DomainError]) -> None:
    error = (
        cls("detail", retry_after_s=1.0)  # type: ignore[call-arg]
        if cls is errors.TooManyAttempts
        else cls("detail")
    )
    answer = domain_response(error)
    body = json.loads(bytes(answer.body))
    assert body == {"error": cls.code.value, "detail": "detail"}
    raised = ServiceError.from_answer(answer.status_code, body, "")
    assert type(raised) is EXPECTED.get(cls.code, ServiceError)
    assert raised.code == cls.code


def test_an_answer_outside_the_contract_is_told_apart_by_its_status() -> None:
    assert type(ServiceError.from_answer(404, None, "<html>")) is NotFound
    assert type(ServiceError.from_answer(403, None, "<html>")) is AccessDenied
    proxy = ServiceError.from_answer(502, None, "bad gateway")
    assert (type(proxy), proxy.code) == (ServiceError, ErrorCode.http_error)
