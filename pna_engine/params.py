"""Run parameters: the one schema of every option of a run.

:class:`Params` is the single source of the run's parameters. Each field carries its own
schema in its ``metadata`` (made by :func:`option`): help text, option group, kind of value
(which decides how a value is parsed and checked) and where the field appears. From it are
derived:

* the options of ``pna-engine run`` (:func:`add_arguments`),
* the fields of a job request (``pna_helpers.jobs.AnalysisRequest``), the options of
  ``pna submit`` and the columns of a places file (:func:`request_fields`),
* the validation: every way of making a ``Params`` (``Params(...)``,
  :meth:`Params.from_dict`, the command line, a job request) goes through
  :meth:`Params.normalise`, which parses and checks each field by its kind and then the rules
  between fields. A bad value raises :class:`ParamError` naming the field.

How to add a run option (one place)
-----------------------------------
Add a field to :class:`Params` with a default and ``metadata=option("help", group=...,
kind=...)``. The new option then exists in ``pna-engine run --help``, in job requests, in
``pna submit`` and in places files. Give ``request=False`` for an engine-only option, or
``cli=False`` for one set only from code. A new kind of value gets a parser in ``_KINDS``;
a rule between fields goes in :meth:`Params._check_together`. Then read
``params.<name>`` where the engine needs it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pna_engine.errors import InputError
from pna_engine.remote import is_remote, scheme_of

#: Reference defaults (BNA-METHOD.md §13).
DEFAULT_MAX_TRIP_DISTANCE = 2680.0
DEFAULT_BOUNDARY_BUFFER = 2680.0
DEFAULT_BLOCK_SIZE = 500.0
DEFAULT_BLOCK_POPULATION = 100
#: The country of a run when none is given (the reference tool's default, US mode).
DEFAULT_COUNTRY = "United States"

#: US state postal code -> 2-digit FIPS (50 states, DC, PR).
STATE_FIPS: dict[str, str] = {
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09",
    "DE": "10", "DC": "11", "FL": "12", "GA": "13", "HI": "15", "ID": "16", "IL": "17",
    "IN": "18", "IA": "19", "KS": "20", "KY": "21", "LA": "22", "ME": "23", "MD": "24",
    "MA": "25", "MI": "26", "MN": "27", "MS": "28", "MO": "29", "MT": "30", "NE": "31",
    "NV": "32", "NH": "33", "NJ": "34", "NM": "35", "NY": "36", "NC": "37", "ND": "38",
    "OH": "39", "OK": "40", "OR": "41", "PA": "42", "RI": "44", "SC": "45", "SD": "46",
    "TN": "47", "TX": "48", "UT": "49", "VT": "50", "VA": "51", "WA": "53", "WV": "54",
    "WI": "55", "WY": "56", "PR": "72",
}

#: Option groups of the command line, in the order of ``--help``.
GROUPS = ("inputs", "place", "analysis", "downloads")


class ParamError(InputError):
    """A bad value of one run parameter.

    Attributes
    ----------
    field
        The parameter's name (``max_trip_distance``).
    why
        What is wrong and what to give instead, worded to follow the parameter's name.
    """

    def __init__(self, name: str, why: str):
        self.field = name
        self.why = why
        super().__init__(f"{option_name(name)} {why}")

    def for_request(self) -> InputError:
        """The same error worded for a job request or a places file (``request field 'x': ...``)."""
        return InputError(f"request field {self.field!r}: {self.why}")


def option_name(name: str) -> str:
    """The command-line option of a field: ``max_trip_distance`` -> ``--max-trip-distance``."""
    return "--" + name.replace("_", "-")


def option(help: str, *, group: str, kind: str, cli: bool = True, request: bool = True,
           metavar: str | None = None) -> dict[str, Any]:
    """Schema of one :class:`Params` field (its ``metadata``).

    Parameters
    ----------
    help
        Help text of the command-line option; ``(default: X)`` is added for a field with a
        plain default unless the text already says ``default:``.
    group
        Option group of ``pna-engine run --help``: inputs, place, analysis, downloads.
    kind
        How a value is parsed and checked: a key of ``_KINDS``.
    cli
        Whether ``pna-engine run`` has the option.
    request
        Whether a job request (and a places file, and ``pna submit``) can carry it.
    metavar
        Placeholder in the help text.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown option group {group!r}")
    if kind not in _KINDS:
        raise ValueError(f"unknown parameter kind {kind!r}")
    return {"help": help, "group": group, "kind": kind, "cli": cli, "request": request,
            "metavar": metavar}


# --------------------------------------------------------------------------- kinds of values
class _Bad(ValueError):
    """Raised by a kind's parser; the message is the ``why`` of a :class:`ParamError`."""


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _number(v: Any) -> float:
    if isinstance(v, bool):
        raise _Bad(f"must be a number, got {v!r}")
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        raise _Bad(f"must be a number, got {v!r}") from None


def _whole(v: Any, what: str, lo: int, hi: int | None) -> int | None:
    if _blank(v):
        return None
    try:
        x = _number(v)
    except _Bad:
        raise _Bad(f"must be {what}, got {v!r}") from None
    if not math.isfinite(x) or x != int(x) or x < lo or (hi is not None and x > hi):
        raise _Bad(f"must be {what}, got {v!r}")
    return int(x)


def _distance(v: Any, *, zero_ok: bool = False) -> float:
    what = "a finite number of metres, >= 0" if zero_ok else "a finite positive number of metres"
    if _blank(v):
        raise _Bad(f"must be {what}, got nothing")
    try:
        x = _number(v)
    except _Bad:
        raise _Bad(f"must be {what}, got {v!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not zero_ok):
        raise _Bad(f"must be {what}, got {v!r}")
    return x


def _text(v: Any) -> str | None:
    if _blank(v):
        return None
    if not isinstance(v, str | bytes) and not hasattr(v, "__fspath__"):
        raise _Bad(f"must be text, got {v!r}")
    return str(v).strip()


def _name(v: Any) -> str | None:
    """A name shown on one line (job logs, tables, CSV cells, report headings)."""
    s = _text(v)
    bad = sorted({c for c in s or "" if ord(c) < 32 or 127 <= ord(c) < 160})
    if bad:
        raise _Bad(f"must be one line of text, without the {', '.join(repr(c) for c in bad)} "
                   f"in {s!r} (a line break or control character)")
    return s


def _location(v: Any) -> str | None:
    if _blank(v):
        return None
    if not isinstance(v, str) and not hasattr(v, "__fspath__"):
        raise _Bad(f"must be a path or URL, got {v!r}")
    s = str(v).strip()
    scheme = scheme_of(s)
    if scheme and not is_remote(s):
        raise _Bad(f"has an unsupported URL scheme in {s!r}; use a path, http(s):// or s3://")
    if scheme == "s3" and not re.match(r"^s3://[^/]+/.+", s, re.I):
        raise _Bad(f"is a bad S3 URI {s!r}, expected s3://bucket/key")
    return s


def _locations(v: Any) -> list[str]:
    if _blank(v):
        return []
    items = re.split(r"[;|]", v) if isinstance(v, str) else v
    if not isinstance(items, Iterable):
        raise _Bad(f"must be a list of paths or URLs, got {v!r}")
    return [loc for loc in (_location(x) for x in items) if loc]


def _flag(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if _blank(v):
        return False
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("true", "yes", "y", "1", "on"):
        return True
    if s in ("false", "no", "n", "0", "off"):
        return False
    raise _Bad(f"must be true or false (or yes/no, 1/0), got {v!r}")


def _fips(digits: int, example: str) -> Callable[[Any], str | None]:
    def parse(v: Any) -> str | None:
        if _blank(v):
            return None
        s = v.strip() if isinstance(v, str) else None
        if s is None or not re.fullmatch(rf"\d{{{digits}}}", s):
            raise _Bad(f"must be exactly {digits} digits, leading zeros included (e.g. "
                       f"{example}), got {v!r}")
        return s
    return parse


def _state(v: Any) -> str | None:
    if _blank(v):
        return None
    s = str(v).strip().upper()
    if s not in STATE_FIPS:
        raise _Bad(f"is an unknown US state code {v!r}: give a 2-letter postal code such as MA")
    return s


def _required(parse: Callable[[Any], Any], why: str) -> Callable[[Any], Any]:
    """``parse``, but nothing (None, blank) is an error saying ``why``."""
    def parse_required(v: Any) -> Any:
        out = parse(v)
        if not out:
            raise _Bad(why)
        return out
    return parse_required


def _quirks(v: Any) -> Quirks | dict[str, bool] | None:
    """A full :class:`Quirks`, or switch overrides (``{name: bool}``) applied on top of the
    methodology profile by :meth:`Params._check_together`; None: the profile's switches."""
    if isinstance(v, Quirks):
        return v
    if _blank(v) or v == []:
        return None
    try:
        if isinstance(v, dict):
            return {quirk_name(k): _switch(k, x) for k, x in v.items()}
        if isinstance(v, str | list | tuple):
            return parse_quirk_options(list(v) if not isinstance(v, str) else v)
    except InputError as exc:
        raise _Bad(str(exc)) from None
    raise _Bad(f"must be switches such as B2=off;B7=off (or a dict of them), got {v!r}")


def _methodology(v: Any) -> str:
    s = "reference" if _blank(v) else str(v).strip().lower()
    if s not in METHODOLOGIES:
        raise _Bad(f"must be one of {', '.join(METHODOLOGIES)}, got {v!r}")
    return s


def _any(v: Any) -> Any:
    return v


#: Kind of value -> parser (returns the normalised value or raises ``_Bad``).
_KINDS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "name": _name,
    "required_text": _required(_text, "is required"),
    "location": _location,
    "required_location": _required(_location, "is required: give a file path or URL"),
    "locations": _locations,
    "country": _required(_text, "needs a country name or ISO code"),
    "state": _state,
    "state_fips": _fips(2, "06"),
    "city_fips": _fips(7, "0667000"),
    "speed": lambda v: _whole(v, "a speed in mph (1-199)", 1, 199),
    "distance": _distance,
    "distance_or_zero": lambda v: _distance(v, zero_ok=True),
    "count": lambda v: _whole(v, "a whole number, at least 1", 1, None),
    "year": lambda v: _whole(v, "a year such as 2020", 1900, 2100),
    "flag": _flag,
    "quirks": _quirks,
    "methodology": _methodology,
    "any": _any,
}


# --------------------------------------------------------------------------- quirks
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

    @classmethod
    def names(cls) -> list[str]:
        """Every switch, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def for_profile(cls, methodology: str, overrides: dict[str, Any] | None = None) -> Quirks:
        """The switches of a methodology profile (:data:`METHODOLOGIES`), then ``overrides``
        (switch name or its BNA-METHOD code such as ``"B2"`` -> bool or ``on``/``off``)."""
        if methodology not in METHODOLOGIES:
            raise InputError(f"unknown methodology {methodology!r}: use one of "
                             f"{', '.join(METHODOLOGIES)}")
        q = cls() if methodology == "reference" else cls.corrected()
        for key, value in (overrides or {}).items():
            setattr(q, quirk_name(key), _switch(key, value))
        return q


#: Methodology profiles: ``reference`` reproduces brokenspoke-analyzer 3.2.4 including its
#: apparent bugs (every :class:`Quirks` switch on); ``corrected`` switches them all off.
METHODOLOGIES: tuple[str, ...] = ("reference", "corrected")

#: BNA-METHOD.md §15.5 code of each :class:`Quirks` switch.
QUIRK_CODES: dict[str, str] = {
    "parking_both_ignored": "B2", "amenity_points_inside_polygons": "B3",
    "opposite_track_tf_ignored": "B4", "contraflow_oneway_minus_one": "B5",
    "transit_null_exclusion": "B6", "opportunity_keeps_job_weight": "B7",
    "score_inputs_integer_division": "B8", "identical_polygons_both_deleted": "B14",
    "uturn_is_rightmost": "B15", "crossing_name_sentinels": "B16", "single_pass_orphans": "B22",
}


def quirk_name(key: str) -> str:
    """A :class:`Quirks` switch from its name or its BNA-METHOD code (``B2``)."""
    k = str(key).strip()
    by_code = {c.lower(): n for n, c in QUIRK_CODES.items()}
    if k.lower() in by_code:
        return by_code[k.lower()]
    if k in QUIRK_CODES:
        return k
    raise InputError(f"unknown quirk {key!r}: use one of "
                     f"{', '.join(f'{n} ({c})' for n, c in QUIRK_CODES.items())}")


def _switch(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in ("on", "true", "1", "yes", "reference"):
        return True
    if v in ("off", "false", "0", "no", "fixed", "corrected"):
        return False
    raise InputError(f"quirk {key}: expected on (reproduce the reference) or off (corrected), "
                     f"got {value!r}")


def parse_quirk_options(items: list[str] | str | None) -> dict[str, bool]:
    """``["B2=off", "uturn_is_rightmost=on"]`` (or one ``;``/``,``-separated string) ->
    ``{switch name: bool}``; a bad item raises :class:`InputError` naming it."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [p for p in re.split(r"[;,]", items) if p.strip()]
    out: dict[str, bool] = {}
    for item in items:
        for part in [p for p in re.split(r"[;,]", str(item)) if p.strip()]:
            if "=" not in part:
                raise InputError(f"quirk {part.strip()!r}: expected NAME=on|off, e.g. B2=off "
                                 "or parking_both_ignored=off")
            k, v = part.split("=", 1)
            out[quirk_name(k)] = _switch(k, v)
    return out


def methodology_label(quirks: Quirks | dict[str, Any] | None) -> str:
    """``reference``, ``corrected``, or ``custom (...)`` naming the switches that differ from
    the nearer profile - what run.json and reports show."""
    if quirks is None:
        return "reference"
    q = quirks if isinstance(quirks, dict) else dataclasses.asdict(quirks)
    q = {n: bool(q.get(n, True)) for n in Quirks.names()}
    off = [n for n in Quirks.names() if not q[n]]
    if not off:
        return "reference"
    on = [n for n in Quirks.names() if q[n]]
    if not on:
        return "corrected"
    if len(off) <= len(on):
        return "custom (reference, corrected: " + ", ".join(QUIRK_CODES[n] for n in off) + ")"
    return "custom (corrected, kept: " + ", ".join(QUIRK_CODES[n] for n in on) + ")"


# --------------------------------------------------------------------------- the schema
@dataclass
class Params:
    """Everything a run needs. Paths may be local paths or URLs (``http(s)://``, ``s3://``).

    Values are parsed and checked on creation (:meth:`normalise`): strings from a command
    line or a places file become numbers, flags and codes; a bad value raises
    :class:`ParamError` naming the field. See the module docstring to add an option.
    """

    boundary: str = field(metadata=option(
        "place boundary: shapefile, zipped shapefile, GeoJSON or GeoPackage (any CRS; a "
        "non-empty polygon layer)", group="inputs", kind="required_location"))
    output: str = field(metadata=option(
        "output folder for the export", group="inputs", kind="required_text", request=False))
    #: Place name, recorded in run.json (results loaders and reports show it).
    place: str | None = field(default=None, metadata=option(
        "place name recorded in run.json and shown by reports (default: none; readers then "
        "use the folder or job name)", group="place", kind="name"))
    osm: str | None = field(default=None, metadata=option(
        "OpenStreetMap extract (.osm.pbf, .osm, .osm.bz2, .osm.gz), path or URL; default: "
        "download the Geofabrik extract covering the boundary", group="inputs", kind="location"))
    population: str | None = field(default=None, metadata=option(
        "census blocks (TIGER 2020/2010 zipped shapefile, shapefile or GeoPackage), path or URL; "
        "default: TIGER (US), WorldPop or a synthetic grid (non-US)", group="inputs",
        kind="location"))
    jobs: list[str] = field(default_factory=list, metadata=option(
        "LODES *_od_main_JT00_*.csv / *_od_aux_JT00_*.csv (repeatable; US only); default: "
        "download the latest LODES8 files of the state", group="inputs", kind="locations",
        metavar="PATH_OR_URL"))
    #: Country name or ISO code. US mode iff this resolves to the United States.
    country: str = field(default=DEFAULT_COUNTRY, metadata=option(
        "country name or ISO code; US mode iff United States", group="place", kind="country"))
    #: US state: 2-letter postal code (e.g. "MA") - used to find TIGER/LODES/Geofabrik files.
    state: str | None = field(default=None, metadata=option(
        "US state postal code, e.g. MA (default: none; needed in the US to download census "
        "blocks and jobs)", group="place", kind="state"))
    state_fips: str | None = field(default=None, metadata=option(
        "2-digit US state FIPS code, e.g. 25 (default: from --state)", group="place",
        kind="state_fips"))
    city_fips: str | None = field(default=None, metadata=option(
        "7-digit US city FIPS code, state + place, e.g. 2507000 (default: none)",
        group="place", kind="city_fips"))
    #: Residential default speeds, mph (the reference works in mph).
    city_speed_limit: int | None = field(default=None, metadata=option(
        "residential default speed of the city, mph (default: US: the --city-fips row of "
        "PeopleForBikes' city_fips_speed.csv, looked up online; 30 elsewhere, as the reference "
        "tool)", group="place", kind="speed"))
    state_speed_limit: int | None = field(default=None, metadata=option(
        "residential default speed of the state, mph (US only; default: the state's row of "
        "PeopleForBikes' state_fips_speed.csv, looked up online)", group="place", kind="speed"))
    max_trip_distance: float = field(default=DEFAULT_MAX_TRIP_DISTANCE, metadata=option(
        "maximum trip distance, metres", group="analysis", kind="distance"))
    boundary_buffer: float = field(default=DEFAULT_BOUNDARY_BUFFER, metadata=option(
        "metres around the boundary whose ways are imported", group="analysis",
        kind="distance_or_zero", cli=False, request=False))
    #: Synthetic population grid (non-US fallback), Web-Mercator units / people per cell.
    block_size: float = field(default=DEFAULT_BLOCK_SIZE, metadata=option(
        "cell size of the synthetic population grid, Web-Mercator units", group="analysis",
        kind="distance", cli=False, request=False))
    block_population: int = field(default=DEFAULT_BLOCK_POPULATION, metadata=option(
        "people per cell of the synthetic population grid", group="analysis", kind="count",
        cli=False, request=False))
    worldpop_year: int | None = field(default=None, metadata=option(
        "WorldPop year for non-US population (default: the current year)", group="analysis",
        kind="year"))
    lodes_year: int | None = field(default=None, metadata=option(
        "LODES year for US jobs (default: the latest available)", group="analysis",
        kind="year"))
    offline: bool = field(default=False, metadata=option(
        "never download: a missing input is an error naming the option to give",
        group="downloads", kind="flag"))
    cache_dir: str | None = field(default=None, metadata=option(
        "folder for downloaded inputs (default: ~/.cache/pna)", group="downloads",
        kind="text"))
    #: Worker processes for the connectivity phase; None = all cores.
    workers: int | None = field(default=None, metadata=option(
        "processes for the connectivity phase (default: all cores)", group="analysis",
        kind="count"))
    methodology: str = field(default="reference", metadata=option(
        "methodology profile: reference = brokenspoke-analyzer 3.2.4 exactly, its apparent "
        "bugs included; corrected = every quirk of BNA-METHOD.md §15.5 fixed",
        group="analysis", kind="methodology"))
    #: The reference's apparent bugs, switch by switch (None: those of ``methodology``).
    quirks: Quirks | None = field(default=None, metadata=option(
        "experts: switch single quirks on (reproduce the reference) or off (corrected) on top "
        "of --methodology, NAME=on|off; NAME is a pna_engine.params.Quirks field or its code: "
        "B2 B3 B4 B5 B6 B7 B8 B14 B15 B16 B22 (repeatable, or ';'-separated; default: none)",
        group="analysis", kind="quirks", metavar="NAME=on|off"))
    #: Destinations from another OSM file (explain swaps the destinations alone with it).
    destinations_osm: str | None = field(default=None, metadata=option(
        "take the destinations from this OSM extract instead of --osm (the network still "
        "comes from --osm; default: none)", group="inputs", kind="location",
        metavar="PATH_OR_URL"))
    #: What-if scenarios: OSM way id -> {tag: new value or None to delete}, applied on import.
    way_tag_edits: dict[int, dict[str, str | None]] = field(default_factory=dict, metadata=option(
        "OSM way id -> {tag: new value or None}, applied on import", group="analysis",
        kind="any", cli=False, request=False))

    def __post_init__(self) -> None:
        values = {name: getattr(self, name) for name in _FIELDS}
        for name, value in self.normalise(values).items():
            setattr(self, name, value)

    # ------------------------------------------------------------------ validation
    @classmethod
    def normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Parse and check ``values`` (some or all fields, by name); return them normalised.

        The one place where run parameters are validated: each value by its field's kind,
        then the rules between fields.

        Raises
        ------
        ParamError
            A bad value; the error names the field.
        """
        out = {}
        for name, value in values.items():
            f = _FIELDS.get(name)
            if f is None:
                raise InputError(f"unknown parameter {name!r}; known: {', '.join(_FIELDS)}")
            try:
                out[name] = _KINDS[f.metadata["kind"]](value)
            except _Bad as exc:
                raise ParamError(name, str(exc)) from None
        cls._check_together(out)
        return out

    @staticmethod
    def _check_together(v: dict[str, Any]) -> None:
        """Rules between fields: the quirks are the methodology profile's with any overrides
        (resolved here into a full :class:`Quirks`); the US state, its FIPS code and the
        city's FIPS code agree."""
        if "quirks" in v and not isinstance(v["quirks"], Quirks):
            try:
                v["quirks"] = Quirks.for_profile(v.get("methodology") or "reference", v["quirks"])
            except InputError as exc:
                raise ParamError("quirks", str(exc)) from None
        state, state_fips, city_fips = v.get("state"), v.get("state_fips"), v.get("city_fips")
        if state and state_fips and STATE_FIPS[state] != state_fips:
            raise ParamError("state_fips", f"{state_fips} is not the FIPS code of {state} "
                                           f"({STATE_FIPS[state]}): give matching codes")
        code = state_fips or (STATE_FIPS[state] if state else None)
        if code and city_fips and not city_fips.startswith(code):
            where = f"{state} ({code})" if state else f"state {code}"
            raise ParamError("city_fips", f"{city_fips} is not in {where}: a city FIPS code "
                                          "starts with its state's 2-digit FIPS code")

    def check_inputs(self) -> None:
        """Fail early, before any output is written, when a local input file does not exist.

        Raises
        ------
        ParamError
            Names the option and the missing file (or the folder given as a file).
        """
        from pathlib import Path

        named = [(name, getattr(self, name)) for name in input_roles()]
        for name, value in named + [("jobs", j) for j in self.jobs]:
            if value and not is_remote(value) and not Path(value).expanduser().exists():
                raise ParamError(name, f"file not found: {value}")
            if value and not is_remote(value) and Path(value).expanduser().is_dir():
                raise ParamError(name, f"{value} is a folder, not a file: give the file in it")

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Params:
        """Build from a dict (a job request, run.json's ``params``); unknown keys are an error.

        Raises
        ------
        InputError
            Unknown or missing fields; :class:`ParamError` for a bad value.
        """
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise InputError(f"unknown parameter(s) {', '.join(unknown)}; known: "
                             f"{', '.join(_FIELDS)}")
        for name, f in _FIELDS.items():
            if (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                    and _blank(data.get(name))):
                raise ParamError(name, "is required")
        return cls(**data)

    @property
    def methodology_label(self) -> str:
        """``reference``, ``corrected`` or ``custom (...)``: what run.json and reports show."""
        return methodology_label(self.quirks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (for run.json)."""
        return dataclasses.asdict(self)

    @property
    def iso3(self) -> str | None:
        """ISO 3166-1 alpha-3 code of ``country`` (None when pycountry does not know it)."""
        return country_iso3(self.country)

    @property
    def is_us(self) -> bool:
        """US mode of the reference (TIGER blocks, LODES jobs, FIPS speed defaults)."""
        return self.iso3 == "USA"


_FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Params)}


def input_roles() -> tuple[str, ...]:
    """Fields that are one input file each (``boundary``, ``osm``, ...): fetched by the job
    container, uploaded by the AWS client, resolved against a places file's folder."""
    return tuple(f.name for f in _FIELDS.values()
                 if f.metadata["kind"] in ("location", "required_location"))


@functools.lru_cache(maxsize=256)
def country_iso3(country: str | None) -> str | None:
    """ISO 3166-1 alpha-3 code of a country name or code (``"us"``, ``"Finland"``, ``"FI"``),
    None when pycountry does not know it. The one implementation behind :attr:`Params.iso3`
    and :attr:`Params.is_us`."""
    if not country:
        return None
    c = country.strip()
    if c.lower() in ("us", "usa", "united states", "united states of america"):
        return "USA"
    import pycountry

    try:
        return pycountry.countries.lookup(c).alpha_3
    except LookupError:
        return None


def run_fields() -> list[dataclasses.Field[Any]]:
    """The fields that are options of ``pna-engine run``, in order."""
    return [f for f in _FIELDS.values() if f.metadata["cli"]]


def request_fields() -> list[dataclasses.Field[Any]]:
    """The fields a job request carries (also ``pna submit`` options and places-file
    columns), in order, ``place`` and ``boundary`` first."""
    fs = [f for f in _FIELDS.values() if f.metadata["request"]]
    return sorted(fs, key=lambda f: (f.name != "place", f.name != "boundary"))


def field_default(f: dataclasses.Field[Any]) -> Any:
    """The default value of a field (a fresh one for mutable defaults)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def add_arguments(parser: Any, fields: Iterable[dataclasses.Field[Any]] | None = None, *,
                  required: Iterable[str] | None = None) -> None:
    """Add a command-line option per field to an ``argparse`` parser, grouped as in the schema.

    Values stay text (a list for ``jobs``, a bool for flags) and are parsed by
    :meth:`Params.normalise`, so the command line, job requests and places files share one
    set of rules and messages.

    Parameters
    ----------
    parser
        An ``argparse.ArgumentParser``.
    fields
        Which fields (default: :func:`run_fields`).
    required
        Names of required options (default: the fields without a default).
    """
    fields = list(run_fields() if fields is None else fields)
    if required is None:
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
    required = set(required)
    names = [g for g in GROUPS if any(f.metadata["group"] == g for f in fields)]
    groups = {g: parser.add_argument_group(g) for g in names}
    for f in fields:
        md = f.metadata
        g = groups[md["group"]]
        default = field_default(f)
        text = md["help"]
        if default not in (None, False, []) and "default:" not in text:
            text += " (default: %(default)s)"
        kw: dict[str, Any] = {"dest": f.name, "help": text}
        if md["kind"] == "flag":
            kw["action"] = "store_true"
        elif md["kind"] == "locations":
            kw.update(action="append", default=[], metavar=md["metavar"] or "PATH_OR_URL")
        elif md["kind"] == "quirks":
            kw.update(action="append", default=[], metavar=md["metavar"])
        elif md["kind"] == "methodology":
            kw.update(default=default, choices=list(METHODOLOGIES))
        else:
            kw.update(default=default, required=f.name in required)
            if md["metavar"]:
                kw["metavar"] = md["metavar"]
        g.add_argument(option_name(f.name), **kw)


def values_from_args(args: Any, fields: Iterable[dataclasses.Field[Any]] | None = None
                     ) -> dict[str, Any]:
    """The values of ``fields`` (default: :func:`run_fields`) from an ``argparse`` namespace."""
    return {f.name: getattr(args, f.name)
            for f in (run_fields() if fields is None else fields) if hasattr(args, f.name)}
