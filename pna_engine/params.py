"""Run parameters: every option of ``pna-engine run``, with the reference tool's defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pna_engine.errors import InputError

#: Reference defaults (BNA-METHOD.md §13).
DEFAULT_MAX_TRIP_DISTANCE = 2680.0
DEFAULT_BOUNDARY_BUFFER = 2680.0
DEFAULT_BLOCK_SIZE = 500.0
DEFAULT_BLOCK_POPULATION = 100


@dataclass
class Quirks:
    """Switches for the reference tool's apparent bugs (BNA-METHOD.md §15.5).

    Every switch defaults to ``True`` = reproduce brokenspoke-analyzer 3.2.4 exactly, so that
    scores match the reference. A later "corrected" methodology can turn them off one by one.
    Each switch is read in exactly one place in the engine (grep its name).
    """

    #: B2: ``parking:*:both`` tags never count (per-side updates overwrite them).
    parking_both_ignored: bool = True
    #: B3: ``amenity`` points inside a polygon destination are still added (AND/OR precedence).
    amenity_points_inside_polygons: bool = True
    #: B4: ``cycleway:left/right=opposite_track`` ignored for tf on ``oneway=yes`` roads.
    opposite_track_tf_ignored: bool = True
    #: B5: contraflow rules T4-T9 fire on ``cycleway:{side}:oneway=-1``.
    contraflow_oneway_minus_one: bool = True
    #: B6: ``public_transport=station`` without railway/station tags is not transit.
    transit_null_exclusion: bool = True
    #: B7: block opportunity keeps the 0.35 employment weight when no jobs were imported.
    opportunity_keeps_job_weight: bool = True
    #: B8: destination "Average score of low stress access" rows use integer division.
    score_inputs_integer_division: bool = True
    #: B14: two identical polygons contain each other and are both deleted.
    identical_polygons_both_deleted: bool = True
    #: B15: sin(180°) > 0: an exact U-turn counts as the rightmost turn.
    uturn_is_rightmost: bool = True
    #: B16: name sentinels 'a'/'b' in the crossing test.
    crossing_name_sentinels: bool = True
    #: B22: orphan removal is a single pass.
    single_pass_orphans: bool = True

    @classmethod
    def corrected(cls) -> Quirks:
        """All quirks switched off."""
        return cls(**{f.name: False for f in dataclasses.fields(cls)})


@dataclass
class Params:
    """Everything a run needs. Paths may be local paths or URLs (``http(s)://``, ``s3://``)."""

    boundary: str
    output: str
    #: Place name, recorded in run.json (results loaders and reports show it).
    place: str | None = None
    osm: str | None = None
    population: str | None = None
    jobs: list[str] = field(default_factory=list)
    #: Country name or ISO code. US mode iff this resolves to the United States.
    country: str = "United States"
    #: US state: 2-letter postal code (e.g. "MA") - used to find TIGER/LODES/Geofabrik files.
    state: str | None = None
    state_fips: str | None = None
    city_fips: str | None = None
    #: Residential default speeds, mph (the reference works in mph).
    city_speed_limit: int | None = None
    state_speed_limit: int | None = None
    max_trip_distance: float = DEFAULT_MAX_TRIP_DISTANCE
    boundary_buffer: float = DEFAULT_BOUNDARY_BUFFER
    #: Synthetic population grid (non-US fallback), Web-Mercator units / people per cell.
    block_size: float = DEFAULT_BLOCK_SIZE
    block_population: int = DEFAULT_BLOCK_POPULATION
    worldpop_year: int | None = None
    lodes_year: int | None = None
    offline: bool = False
    cache_dir: str | None = None
    #: Worker processes for the connectivity phase; None = all cores.
    workers: int | None = None
    quirks: Quirks = field(default_factory=Quirks)
    #: What-if scenarios: OSM way id -> {tag: new value or None to delete}, applied on import.
    way_tag_edits: dict[int, dict[str, str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_trip_distance is None or not self.max_trip_distance > 0:
            raise InputError(
                f"--max-trip-distance must be a positive number of metres, got {self.max_trip_distance!r}"
            )
        for name in ("city_speed_limit", "state_speed_limit"):
            v = getattr(self, name)
            if v is not None and not (0 < v < 200):
                raise InputError(f"--{name.replace('_', '-')} must be a speed in mph (1-199), got {v!r}")
        if self.boundary_buffer is None or self.boundary_buffer < 0:
            raise InputError(f"the boundary buffer must be >= 0 metres, got {self.boundary_buffer!r}")
        if self.state is not None:
            from pna_engine.download import STATE_FIPS

            if str(self.state).strip().upper() not in STATE_FIPS:
                raise InputError(
                    f"unknown US state code {self.state!r}: give a 2-letter postal code such as MA")
        if self.state_fips is not None and not (
                str(self.state_fips).isdigit() and len(str(self.state_fips)) <= 2):
            raise InputError(f"--state-fips must be a 2-digit FIPS code, got {self.state_fips!r}")
        if self.city_fips is not None and not (
                str(self.city_fips).isdigit() and len(str(self.city_fips)) <= 7):
            raise InputError(f"--city-fips must be a 7-digit FIPS code, got {self.city_fips!r}")

    @property
    def iso3(self) -> str | None:
        """ISO 3166-1 alpha-3 code of ``country`` (None when pycountry does not know it)."""
        if not self.country:
            return None
        c = self.country.strip()
        if c.lower() in ("us", "usa", "united states", "united states of america"):
            return "USA"
        import pycountry

        try:
            return pycountry.countries.lookup(c).alpha_3
        except LookupError:
            return None

    @property
    def is_us(self) -> bool:
        """US mode of the reference (TIGER blocks, LODES jobs, FIPS speed defaults)."""
        return self.iso3 == "USA"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (for run.json)."""
        return dataclasses.asdict(self)
