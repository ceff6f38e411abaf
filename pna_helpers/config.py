"""PNA settings: one object read from an optional config file and environment variables.

Precedence (highest first): keyword overrides > environment variables > config file > defaults.

The config file is TOML, found at ``$PNA_CONFIG`` or ``~/.config/pna/config.toml``; keys are the
field names of :class:`Settings` (e.g. ``backend = "aws"``, ``job_queue = "pna-queue"``),
optionally inside a ``[pna]`` table. Environment variables are ``PNA_`` + the upper-case field
name (``PNA_BACKEND``, ``PNA_JOB_QUEUE``, ``PNA_JOB_DEFINITION``, ``PNA_RESULTS_BUCKET``, ...);
the region comes from ``PNA_REGION``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` and the endpoint
from ``AWS_ENDPOINT_URL`` (so everything can point at an emulator).

Credentials are never part of the settings: boto3 finds them the usual way (environment,
``~/.aws``, instance role) and PNA never writes them anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pna_engine.errors import InputError
from pna_helpers.paths import outputs_dir

BACKENDS = ("local", "aws")
COMPUTE_TYPES = ("EC2", "SPOT", "FARGATE", "FARGATE_SPOT")


@dataclass
class Settings:
    """Everything the job backends and the stack need. See the module docstring for sources."""

    #: ``local`` (default: embedded, offline) or ``aws`` (AWS Batch).
    backend: str = "local"
    #: Local backend: jobs running at once.
    concurrency: int = 1
    #: AWS region (default: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1).
    region: str | None = None
    #: Custom AWS endpoint (an emulator such as moto); ``AWS_ENDPOINT_URL``.
    endpoint_url: str | None = None
    job_queue: str = "pna-queue"
    job_definition: str = "pna-engine"
    compute_environment: str = "pna-compute"
    #: S3 bucket for inputs, manifests and results (default: ``pna-<account id>-<region>``).
    results_bucket: str | None = None
    #: Container image (default: ``<account>.dkr.ecr.<region>.amazonaws.com/pna-engine:<version>``).
    image: str | None = None
    #: ``EC2`` (on-demand), ``SPOT``, ``FARGATE`` or ``FARGATE_SPOT``.
    compute_type: str = "SPOT"
    min_vcpus: int = 0
    desired_vcpus: int = 0
    max_vcpus: int = 64
    #: Instance types with enough memory and local scratch (NVMe) for large places.
    instance_types: list[str] = field(default_factory=lambda: ["m6id", "r6id", "c6id"])
    #: Network: empty = the account's default VPC subnets and its default security group.
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    #: Per-job resources.
    job_vcpus: int = 2
    job_memory_mib: int = 7500
    #: Root volume of EC2 hosts, GiB (scratch for large places).
    volume_gib: int = 200
    #: Per-attempt timeout and Batch retry attempts.
    job_timeout_s: int = 6 * 3600
    retry_attempts: int = 2
    #: Campaign cost estimates: price of one vCPU-hour (USD); ``PNA_VCPU_HOUR_PRICE``.
    #: Default 0.02: about the Spot price of the m6id/c6id/r6id families per vCPU-hour
    #: (on-demand is roughly 2.5-3x more; set yours).
    vcpu_hour_price: float = 0.02
    #: Local backend: jobs one worker process runs in turn, the engine imported once (one
    #: forked child per job, as an AWS array child runs many places); 1 = a process per job.
    places_per_worker: int = 1
    #: Every AWS call: seconds to connect, seconds to wait for an answer (a read timeout is
    #: not retried), attempts for throttling / 5xx / connection errors (botocore's standard
    #: retry mode). See :func:`pna_engine.remote.aws_client`.
    aws_connect_timeout: float = 10.0
    aws_read_timeout: float = 30.0
    aws_max_attempts: int = 3
    #: Outputs folder (local job store, logs, results, reports); ``PNA_OUTPUTS``.
    outputs: Path = field(default_factory=outputs_dir)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Read the config file, then the environment, then apply ``overrides``.

        Parameters
        ----------
        config_file : str or pathlib.Path, optional
            TOML file; default ``$PNA_CONFIG`` or ``~/.config/pna/config.toml`` if present.
        **overrides : Any
            Field values that win over everything else (``None`` values are ignored).

        Returns
        -------
        Settings
            The validated settings.

        Raises
        ------
        InputError
            Unknown key, bad value, missing or unreadable config file, or credentials in it.
        """
        values: dict[str, Any] = {}
        path = config_file or os.environ.get("PNA_CONFIG")
        if path is None:
            default = Path.home() / ".config" / "pna" / "config.toml"
            path = default if default.exists() else None
        if path is not None:
            values.update(_read_config(Path(path)))
        values.update(_from_env())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        """Build settings from a dict of field values (strings are converted).

        Parameters
        ----------
        values : dict of str to Any
            Field name -> value; strings become the field's type (``int``, ``float``,
            comma-separated ``list``, ``Path``). Missing fields keep their defaults.

        Returns
        -------
        Settings
            The validated settings.

        Raises
        ------
        InputError
            Unknown field name, a value that does not convert, or a failed :meth:`validate`.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kw: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in fields:
                raise InputError(f"unknown PNA setting {key!r}; known: {', '.join(sorted(fields))}")
            kw[key] = _convert(key, raw, cls.__dataclass_fields__[key].type)
        s = cls(**kw)
        s.validate()
        return s

    def validate(self) -> None:
        """Check values; raise :class:`InputError` naming the bad setting.

        Also normalises ``compute_type`` to upper case and ``outputs`` to an absolute path.

        Raises
        ------
        InputError
            A value out of range or not among the allowed choices.
        """
        if self.backend not in BACKENDS:
            raise InputError(f"PNA_BACKEND must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.concurrency < 1:
            raise InputError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.places_per_worker < 1:
            raise InputError(f"places_per_worker must be >= 1, got {self.places_per_worker}")
        if not self.vcpu_hour_price >= 0:
            raise InputError(f"vcpu_hour_price must be >= 0 (USD per vCPU-hour), got "
                             f"{self.vcpu_hour_price}")
        ct = self.compute_type.upper()
        if ct not in COMPUTE_TYPES:
            raise InputError(f"PNA_COMPUTE_TYPE must be one of {', '.join(COMPUTE_TYPES)}, "
                             f"got {self.compute_type!r}")
        self.compute_type = ct
        if not 0 <= self.min_vcpus <= self.max_vcpus:
            raise InputError(f"vCPUs must satisfy 0 <= min ({self.min_vcpus}) <= max "
                             f"({self.max_vcpus})")
        for name in ("aws_connect_timeout", "aws_read_timeout", "aws_max_attempts"):
            v = getattr(self, name)
            if not 0 < v < float("inf"):
                raise InputError(f"PNA_{name.upper()} must be a positive number, got {v!r}")
        self.outputs = Path(self.outputs).expanduser().resolve()

    @property
    def aws_region(self) -> str:
        """The region in use (settings, else the AWS environment, else us-east-1).

        Returns
        -------
        str
            ``region``, else ``$AWS_REGION``, else ``$AWS_DEFAULT_REGION``, else ``us-east-1``.
        """
        return (self.region or os.environ.get("AWS_REGION")
                or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (no secrets: settings hold none).

        Returns
        -------
        dict of str to Any
            Every field; ``outputs`` as text and ``region`` as the region in use
            (:attr:`aws_region`).
        """
        d = dataclasses.asdict(self)
        d["outputs"] = str(self.outputs)
        d["region"] = self.aws_region
        return d


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"PNA config file {path} not found: fix PNA_CONFIG or create it") from exc
    except IsADirectoryError as exc:
        raise InputError(f"PNA config file {path} is a folder: give the TOML file itself "
                         "(--config or PNA_CONFIG)") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"PNA config file {path} is not valid TOML "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from exc
    data = data.get("pna", data)
    if not isinstance(data, dict):
        raise InputError(f"PNA config file {path}: 'pna' must be a table ([pna]) of settings")
    for secret in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        if secret in data:
            raise InputError(f"{path}: do not put credentials in the PNA config file; use the "
                             "usual AWS credential chain (environment, ~/.aws, roles)")
    return dict(data)


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        v = os.environ.get(f"PNA_{f.name.upper()}")
        if v not in (None, ""):
            out[f.name] = v
    if "endpoint_url" not in out and os.environ.get("AWS_ENDPOINT_URL"):
        out["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return out


def _convert(key: str, raw: Any, typ: Any) -> Any:
    t = str(typ)
    try:
        if t.startswith("int"):
            return int(raw)
        if t.startswith("float"):
            return float(raw)
        if t.startswith("list"):
            if isinstance(raw, str):
                return [x.strip() for x in raw.split(",") if x.strip()]
            return [str(x) for x in raw]
        if t == "Path":
            return Path(raw)
    except (TypeError, ValueError) as exc:
        raise InputError(f"PNA setting {key} has a bad value {raw!r}: expected {t}") from exc
    return raw if raw is None else (str(raw) if not isinstance(raw, str | Path) else raw)


def load_settings(**overrides: Any) -> Settings:
    """Shortcut for :meth:`Settings.load`.

    Parameters
    ----------
    **overrides : Any
        Passed to :meth:`Settings.load`: ``config_file`` and field values that win over the
        config file and the environment (``None`` values are ignored).

    Returns
    -------
    Settings
        The validated settings.

    Raises
    ------
    InputError
        Unknown key, bad value, or a missing or unreadable config file.
    """
    return Settings.load(**overrides)
