"""pna_helpers: what the PNA notebooks call - jobs (local and AWS Batch), results, maps, reports."""

__version__ = "0.1.0"
