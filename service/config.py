"""Service settings: environment variables with production defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from service.contract import SAVED_MODEL_FILE, complete_versions, latest_version
from service.reader import MODEL_FILE as READER_FILE

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODELS = PACKAGE_ROOT / "models"
DEFAULT_MODEL = "cnn"


@dataclass
class Settings:
    host: str = "0.0.0.0"
    port: int = 8000
    # A version directory (models/cnn/1) or a model directory (models/cnn: latest version is used).
    model_dir: str = ""
    models_root: str = str(BUNDLED_MODELS)  # other bundled models, for ?model=<name>
    max_content_length: int = 10 * 1024 * 1024  # bytes per request body
    max_image_pixels: int = 25_000_000  # width x height before decoding (decompression bombs)
    max_batch: int = 256  # images per request
    max_digits: int = 20  # digits read in one image; more is refused (422 too_many_digits)
    max_json_depth: int = 8
    rate_limit: float = 0.0  # requests/s per client address and worker; 0 = off
    rate_burst: int = 20
    runtime: str = "auto"  # auto (LiteRT when the model has one), litert, or savedmodel
    database_url: str = ""  # corrections' database; empty = SQLite at $DATA_DIR/digits.db
    data_dir: str = "./var"  # the image sets /data (a volume)
    admin_token: str = ""  # Bearer token of the admin routes; empty = no admin routes at all
    # the line reader (service/reader.py) that counts touching digits: a version or model directory; empty = the
    # bundled models/reader; "off" = touching digits are split by segmentation's scores alone
    reader_dir: str = ""

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Settings:
        """Each field from its upper-case environment variable (PORT, MODEL_DIR, RATE_LIMIT...)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.name.upper())
            if raw is not None:
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
        return cls(**values)

    def resolved_database_url(self) -> str:
        from service.storage import default_url  # SQLAlchemy only where a database is wanted

        return self.database_url or default_url(self.data_dir)

    def resolved_reader_dir(self) -> Path | None:
        """The line reader's version directory, or None when it is off or not there (a trimmed image)."""
        if self.reader_dir == "off":
            return None
        path = Path(self.reader_dir) if self.reader_dir else Path(self.models_root) / "reader"
        if not (path / READER_FILE).exists():
            versions = complete_versions(path)
            path = versions[-1] if versions else path
        return path if (path / READER_FILE).exists() else None

    def resolved_model_dir(self) -> Path:
        path = Path(self.model_dir) if self.model_dir else Path(self.models_root) / DEFAULT_MODEL
        return path if (path / SAVED_MODEL_FILE).exists() else latest_version(path)
