"""Issuing, listing and revoking tokens: the routes, the CLI, and every worker refusing a
revoked token within the token cache's lifetime."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hwlat.service_process import ServiceProcess, bearer, create_token, hwlat_env
from tests.fixtures.cli import invoke
from tests.fixtures.factories import Headers

pytestmark = pytest.mark.heavy


def test_tokens_are_issued_listed_and_revoked_by_an_admin(
    client: TestClient, tokens: dict[str, Headers]
) -> None:
    created = client.post(
        "/v1/tokens", json={"name": "lab-agent", "scope": "ingest"}, headers=tokens["admin"]
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["token"]
    assert secret.startswith("hwlat_")
    new = bearer(secret)
    assert client.get("/v1/devices", headers=new).status_code == 200
    listed = client.get("/v1/tokens", headers=tokens["admin"]).json()["items"]
    assert [t["name"] for t in listed][-1] == "lab-agent"
    assert all("token" not in t and "token_hash" not in t for t in listed)
    revoked = client.delete(f"/v1/tokens/{body['id']}", headers=tokens["admin"])
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    # The worker that revoked it forgets it at once.
    refused = client.get("/v1/devices", headers=new)
    assert refused.status_code == 401
    assert refused.json()["error"] == "not_authenticated"
    again = client.delete(f"/v1/tokens/{body['id']}", headers=tokens["admin"])
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert client.delete("/v1/tokens/9999", headers=tokens["admin"]).status_code == 404


def test_only_admins_manage_tokens(client: TestClient, tokens: dict[str, Headers]) -> None:
    for scope in ("read", "ingest"):
        assert client.get("/v1/tokens", headers=tokens[scope]).status_code == 403
        assert (
            client.post(
                "/v1/tokens", json={"name": "x", "scope": "read"}, headers=tokens[scope]
            ).status_code
            == 403
        )
    bad = client.post("/v1/tokens", json={"name": "x", "scope": "root"}, headers=tokens["admin"])
    assert bad.status_code == 422
    assert "scope" in bad.json()["detail"]


def test_a_revoked_token_is_refused_by_every_worker_within_the_cache_lifetime(
    tmp_path: Path,
) -> None:
    ttl_s = 1.0
    env = {**hwlat_env(tmp_path), "HWLAT_TOKEN_CACHE_S": str(ttl_s)}
    admin = create_token(env, "admin", name="admin")
    doomed = create_token(env, "read", name="doomed")
    with ServiceProcess(env, tmp_path / "serve.log", workers=2) as server:
        with httpx.Client(base_url=server.url, headers=bearer(doomed), timeout=10) as user:
            # New connections spread over both workers; each caches the token.
            for _ in range(20):
                with httpx.Client(base_url=server.url, headers=bearer(doomed)) as fresh:
                    assert fresh.get("/v1/devices").status_code == 200
            assert user.get("/v1/devices").status_code == 200
        listed = invoke(["token", "list"], env)
        assert listed.returncode == 0, listed.stderr
        (line,) = [ln for ln in listed.stdout.splitlines() if "\tdoomed\t" in ln]
        token_id = line.split("\t")[0]
        assert "active" in line
        revoked_at = time.monotonic()
        with httpx.Client(base_url=server.url, headers=bearer(admin)) as boss:
            assert boss.delete(f"/v1/tokens/{token_id}").status_code == 200
        time.sleep(ttl_s + 0.2)
        answers = []
        for _ in range(20):
            with httpx.Client(base_url=server.url, headers=bearer(doomed)) as fresh:
                answers.append(fresh.get("/v1/devices").status_code)
        assert time.monotonic() - revoked_at < ttl_s + 5
        assert set(answers) == {401}
    assert "revoked" in invoke(["token", "list"], env).stdout
    assert doomed not in (tmp_path / "serve.log").read_text()


def test_token_cli_revokes_by_id(tmp_path: Path) -> None:
    env = hwlat_env(tmp_path)
    create_token(env, "read", name="short-lived")
    listed = invoke(["token", "list"], env).stdout
    token_id = next(ln.split("\t")[0] for ln in listed.splitlines() if "short-lived" in ln)
    out = invoke(["token", "revoke", token_id], env)
    assert out.returncode == 0, out.stderr
    assert f"token {token_id} (short-lived) revoked" in out.stdout
    missing = invoke(["token", "revoke", "999"], env)
    assert missing.returncode == 2
    assert "no token with id 999" in missing.stderr
