"""Jobs: one API over an embedded local backend and AWS Batch.

>>> from pna_helpers import jobs
>>> client = jobs.get_client()                 # PNA_BACKEND=local (default) or aws
>>> job = client.submit(jobs.demo_request())   # doctest: +SKIP
>>> client.wait([job.job_id])                  # doctest: +SKIP
>>> client.results_location(job.job_id)        # doctest: +SKIP

See :mod:`pna_helpers.jobs.base` for the operations, :mod:`~pna_helpers.jobs.local` and
:mod:`~pna_helpers.jobs.aws` for the backends and :mod:`~pna_helpers.jobs.stack` for the AWS
resources.
"""

from pna_helpers.config import Settings, load_settings
from pna_helpers.jobs.base import (
    JobBackend,
    JobError,
    available_backends,
    get_client,
    register_backend,
)
from pna_helpers.jobs.model import (
    ACTIVE,
    BATCH_STATUSES,
    STATUSES,
    TERMINAL,
    Job,
    jobs_table,
)
from pna_helpers.jobs.progress import WaitTimeout
from pna_helpers.jobs.request import AnalysisRequest, demo_request, read_places

__all__ = [
    "ACTIVE", "BATCH_STATUSES", "STATUSES", "TERMINAL", "AnalysisRequest", "Job", "JobBackend",
    "JobError", "Settings", "WaitTimeout", "available_backends", "demo_request", "get_client",
    "jobs_table", "load_settings", "read_places", "register_backend",
]
