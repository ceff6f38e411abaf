"""pna_engine: the Bicycle Network Analysis (BNA) re-implemented in Python.

The engine is a pipeline of named phases (see :data:`PHASES`), each a function from tables to
tables. It reproduces PeopleForBikes' brokenspoke-analyzer 3.2.4 (the reference tool) without
a database server. Its command line, ``pna-engine``, is the entry point of the job container.
"""

__version__ = "0.1.0"

#: The phases of a run, in order. Their names are the progress steps users see.
PHASES: tuple[str, ...] = (
    "import",
    "features",
    "stress",
    "network",
    "blocks",
    "connectivity",
    "destinations",
    "scores",
    "export",
)

__all__ = ["PHASES", "__version__"]
