"""Service settings, read from ``HWLAT_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "hwlat"


class Settings(BaseSettings):
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
