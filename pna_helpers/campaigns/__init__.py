"""Campaigns: hundreds of places run as one tracked, named set, read as one table.

>>> from pna_helpers import campaigns
>>> camp = campaigns.create("bna-2026", campaigns.places_from_file("places.csv"))  # doctest: +SKIP
>>> camp = campaigns.load("bna-2026")          # days later, from another notebook  # doctest: +SKIP
>>> st = camp.status()                         # counts by Batch status, phases, ETA, failures, cost  # doctest: +SKIP
>>> camp.retry()                               # the failed places only  # doctest: +SKIP
>>> camp.results()                             # one row per place  # doctest: +SKIP
>>> campaigns.compare(camp, "bna-2025")        # year over year, flags  # doctest: +SKIP

A campaign is persisted with the jobs (:mod:`._store`): the local job store's SQLite database,
or S3 (``campaigns/<name>.json``) plus a ``pna:campaign`` tag on its Batch jobs. On AWS it is
submitted as array jobs of at most 10,000 children (:mod:`._aws`), and tracked from the
parents' ``arrayProperties.statusSummary``.
"""

from pna_helpers.campaigns._core import (
    Campaign,
    CampaignStatus,
    create,
    list_campaigns,
    load,
    normalise_reason,
)
from pna_helpers.campaigns._dashboard import dashboard, failures_table, money, status_html
from pna_helpers.campaigns._estimate import estimate_campaign, fitted_model, place_size
from pna_helpers.campaigns._places import (
    cut_osm,
    demo_places,
    places_from_boundaries,
    places_from_file,
)
from pna_helpers.campaigns._table import (
    places_map,
    ranking,
    ranking_chart,
    results_table,
    score_distributions,
    write_table,
)
from pna_helpers.campaigns._yoy import (
    FLAG_RULES,
    compare,
    compare_tables,
    comparison_html,
    write_comparison,
)


def demo_campaign(name: str, client=None, changed: bool = False) -> Campaign:
    """Create and submit the offline demo campaign (:func:`demo_places`) on the local backend
    (or ``client``); ``changed=True`` is the same places with changed inputs.

    The inputs are made under ``outputs/demo-inputs/campaign``; the places include the one
    that fails on purpose (see :func:`demo_places`).

    Parameters
    ----------
    name : str
        A new campaign name (letters, digits, ``.``, ``_``, ``-``).
    client : JobBackend or None, optional
        The job client; default a local one.
    changed : bool, optional
        The same places with changed inputs, as a later year (default False).

    Returns
    -------
    Campaign
        The submitted campaign.

    Raises
    ------
    JobError
        A bad name, or a campaign of that name exists already.
    """
    from pna_helpers import jobs
    from pna_helpers.paths import outputs_dir

    client = client or jobs.get_client("local")
    reqs = demo_places(outputs_dir() / "demo-inputs" / "campaign", changed=changed)
    return create(name, reqs, client, source="demo (changed inputs)" if changed else "demo")


def open_or_create(name: str, places: str | None = None, client=None,
                   changed: bool = False) -> Campaign:
    """The campaign ``name`` if it exists, else a new one from the places file ``places``
    (the demo campaign when ``places`` is empty; ``changed`` as in :func:`demo_places`).

    Parameters
    ----------
    name : str
        The campaign name.
    places : str or None, optional
        A places CSV or GeoPackage (:func:`places_from_file`), used only to create; None or
        ``""``: the demo campaign (:func:`demo_campaign`).
    client : JobBackend or None, optional
        The job client; default :func:`pna_helpers.jobs.get_client` (backend from the
        settings).
    changed : bool, optional
        For the demo campaign: the places with changed inputs (default False).

    Returns
    -------
    Campaign
        The existing campaign, or the new one, submitted.

    Raises
    ------
    JobError
        A bad name, or the campaign store could not be read.
    InputError
        A bad places file.
    """
    from pna_helpers import jobs
    from pna_helpers.jobs.base import JobError

    client = client or jobs.get_client()
    try:
        return load(name, client)
    except JobError as exc:
        if "unknown campaign" not in str(exc):
            raise
    if not places:
        return demo_campaign(name, client, changed=changed)
    return create(name, places_from_file(places), client, source=str(places))


__all__ = [
    "FLAG_RULES", "Campaign", "CampaignStatus", "compare", "compare_tables", "comparison_html",
    "create", "cut_osm", "dashboard", "demo_campaign", "failures_table", "open_or_create",
    "money", "status_html", "demo_places", "estimate_campaign", "fitted_model",
    "list_campaigns", "load", "normalise_reason", "place_size", "places_from_boundaries",
    "places_from_file", "places_map", "ranking", "ranking_chart", "results_table",
    "score_distributions", "write_comparison", "write_table",
]
