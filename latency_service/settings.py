"""Service settings, read from ``HWLAT_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "hwlat"


class Settings(BaseSettings):
    # Only the environment: no .env file or secrets directory is read, so the database password
    # (in HWLAT_DATABASE_URL) never has to sit in a file the service loads.
    model_config = SettingsConfigDict(env_prefix="HWLAT_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    # Empty means the embedded default: SQLite at <data_dir>/hwlat.db.
    database_url: str = ""
    # Only honoured for a service bound to loopback (checked by `hwlat serve`).
    auth_disabled: bool = False
    max_batch_items: int = Field(default=10_000, ge=1)
    max_page_size: int = Field(default=1_000, ge=1)
    # How stale a worker's idea of a device's newest predictor version may be, in seconds.
    predictor_refresh_s: float = Field(default=1.0, ge=0)
    # How long a verified token is trusted without asking the database again, in seconds.
    token_cache_s: float = Field(default=5.0, ge=0)
    # /metrics is open by default, as Prometheus expects; set to require a read token.
    metrics_require_token: bool = False
    # Largest request body in bytes, refused with a 413 before it is read or parsed. The
    # default admits the largest ingest batch and predict request with room to spare.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Browser origins allowed to call the API (comma-separated); empty: no CORS headers at all.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Failed authentications one client address may make per window before it gets 429s. Each
    # worker process counts on its own.
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window_s: float = Field(default=60.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, url: str) -> str:
        # Plain postgresql:// would pick psycopg2, which we do not install.
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hwlat.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
