"""Elasticsearch backend (production): versioned indices behind aliases, one index template per document family.

Every request body is built by a pure function below and unit-tested as a dict without a cluster; the backend class
only sends them. Layout, with the default prefix "tb":

- alias `tb-content` (policies, clauses, explanations, articles) and `tb-discussion` (comments, replies), each
  pointing at one versioned index `tb-content-v3`; the templates `tb-content` / `tb-discussion` match `tb-content-v*`;
- during a reindex the new index also carries `tb-content-building`, so live writes from any process reach both the
  serving and the rebuilding index; external versions make the newer write win whichever arrives first.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from search.backends.base import (
    FACET_NAMES,
    FacetCount,
    Hit,
    SearchBackend,
    SearchBackendError,
    SearchBackendUnavailable,
    SearchResult,
    StoredDocument,
    checked_fetch_ids,
)
from search.documents import (
    DOCUMENT_DEFINITIONS,
    DOCUMENT_FAMILIES,
    FACET_FIELDS,
    FieldSpec,
    FieldType,
    InvalidDocument,
    SearchDocument,
    format_datetime,
)
from search.queries import SearchQuery

__all__ = [
    "ANALYZER_CHOICES",
    "ElasticsearchBackend",
    "TEXT_ANALYZER",
    "ElasticsearchSearchBackend",
    "alias_name",
    "alias_swap_actions",
    "analysis_settings",
    "building_alias_name",
    "building_indices_by_family",
    "bulk_delete_actions",
    "bulk_index_actions",
    "choose_analyzer",
    "family_fields",
    "index_mappings",
    "index_template_body",
    "installed_plugin_names",
    "mget_body",
    "next_index_name",
    "search_body",
    "search_kwargs",
    "parse_mget_response",
    "parse_search_response",
    "profile_alias_name",
    "stored_document",
]

log = logging.getLogger(__name__)

ANALYZER_CHOICES = ("auto", "smartcn", "icu", "cjk")
TEXT_ANALYZER = "tb_text"
DEFAULT_PREFIX = "tb"
_PLUGIN_FOR = {"smartcn": "analysis-smartcn", "icu": "analysis-icu"}
_FIELD_BOOSTS = {"title": 3.0, "body": 1.0}
_ES_TYPES = {
    FieldType.KEYWORD: {"type": "keyword"},
    FieldType.DATE: {"type": "date"},
    FieldType.INTEGER: {"type": "long"},
    FieldType.FLOAT: {"type": "float"},
    FieldType.BOOLEAN: {"type": "boolean"},
}
SNIPPET_SIZE = 120
PROFILES_FAMILY = "profiles"  # not a document family: the percolator index of search.matching


# -- names --------------------------------------------------------------------------------------------------------


def alias_name(family: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{family}"


def building_alias_name(family: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{alias_name(family, prefix)}-building"


def profile_alias_name(prefix: str = DEFAULT_PREFIX) -> str:
    """The alias of the percolator index holding one stored query per open interest profile (search.matching)."""
    return alias_name(PROFILES_FAMILY, prefix)


def next_index_name(family: str, existing: Iterable[str], prefix: str = DEFAULT_PREFIX) -> str:
    """The next versioned index for a family: tb-content-v1, then one past the highest existing version."""
    pattern = re.compile(rf"^{re.escape(alias_name(family, prefix))}-v(\d+)$")
    versions = [int(match.group(1)) for name in existing if (match := pattern.match(name))]
    return f"{alias_name(family, prefix)}-v{max(versions, default=0) + 1}"


# -- analysis and mappings ----------------------------------------------------------------------------------------


def installed_plugin_names(cat_plugins: Any) -> set[str]:
    """Plugin component names from `cat.plugins(format="json")` (a list of {"name", "component", "version"})."""
    names: set[str] = set()
    for row in cat_plugins or []:
        if isinstance(row, Mapping) and row.get("component"):
            names.add(str(row["component"]))
    return names


def choose_analyzer(configured: str, installed_plugins: Iterable[str]) -> str:
    """`auto` picks smartcn, else icu, else the built-in cjk; an explicit plugin choice must be installed."""
    if configured not in ANALYZER_CHOICES:
        raise ValueError(f"analyzer must be one of {', '.join(ANALYZER_CHOICES)}, not {configured!r}")
    plugins = set(installed_plugins)
    if configured == "auto":
        for choice in ("smartcn", "icu"):
            if _PLUGIN_FOR[choice] in plugins:
                return choice
        return "cjk"
    if configured in _PLUGIN_FOR and _PLUGIN_FOR[configured] not in plugins:
        raise SearchBackendError(
            f"analyzer {configured!r} needs the {_PLUGIN_FOR[configured]} plugin, which the cluster does not have"
        )
    return configured


def analysis_settings(analyzer: str) -> dict[str, Any]:
    """Index analysis settings defining TEXT_ANALYZER for the chosen Chinese analysis.

    All three fold full-width forms (cjk_width) and case, so "ＡＩ" and "ai" meet, as in the embedded backend.
    """
    if analyzer == "smartcn":
        definition = {"type": "custom", "tokenizer": "smartcn_tokenizer", "filter": ["cjk_width", "lowercase"]}
    elif analyzer == "icu":
        definition = {"type": "custom", "tokenizer": "icu_tokenizer", "filter": ["icu_normalizer", "lowercase"]}
    elif analyzer == "cjk":
        # The built-in cjk analyzer without its English stop list: overlapping bigrams make any two-character
        # Chinese query (医保, 房价) match wherever the characters stand side by side.
        definition = {"type": "custom", "tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"]}
    else:
        raise ValueError(f"no analysis settings for {analyzer!r}; choose smartcn, icu or cjk")
    return {"analysis": {"analyzer": {TEXT_ANALYZER: definition}}}


def family_fields(family: str) -> dict[str, FieldSpec]:
    """All fields of the document types in a family, by name."""
    fields: dict[str, FieldSpec] = {}
    for definition in DOCUMENT_DEFINITIONS.values():
        if definition.family == family:
            for spec in definition.fields:
                fields.setdefault(spec.name, spec)
    if not fields:
        raise ValueError(f"unknown document family {family!r}")
    return fields


def index_mappings(family: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, spec in family_fields(family).items():
        if spec.type is FieldType.TEXT:
            properties[name] = {"type": "text", "analyzer": TEXT_ANALYZER} if spec.analysed else {"type": "text"}
        else:
            properties[name] = dict(_ES_TYPES[spec.type])
    # strict: a field nobody declared (contact data slipped in by a bug) is refused rather than indexed.
    return {"dynamic": "strict", "properties": properties}


def index_template_body(
    family: str,
    analyzer: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    number_of_shards: int = 1,
    number_of_replicas: int = 1,
) -> dict[str, Any]:
    """Keyword arguments for `indices.put_index_template(name=alias_name(family), **body)`."""
    settings = {"number_of_shards": number_of_shards, "number_of_replicas": number_of_replicas}
    settings.update(analysis_settings(analyzer))
    return {
        "index_patterns": [f"{alias_name(family, prefix)}-v*"],
        "priority": 500,
        "template": {"settings": settings, "mappings": index_mappings(family)},
        "meta": {"managed_by": "trial-balloon", "family": family, "analyzer": analyzer},
    }


# -- queries ------------------------------------------------------------------------------------------------------


def _text_fields() -> list[str]:
    return [f"{name}^{boost:g}" for name, boost in _FIELD_BOOSTS.items()]


def search_body(query: SearchQuery, *, facet_size: int = 20) -> dict[str, Any]:
    """The _search request body for a query (plain Elasticsearch JSON, "from" included)."""
    parsed = query.parsed_text
    must: list[dict[str, Any]] = []
    if parsed.words:
        # cross_fields + and: every word must occur, in the title or the body, like the embedded FTS5 AND.
        must.append({
            "multi_match": {
                "query": parsed.words,
                "fields": _text_fields(),
                "type": "cross_fields",
                "operator": "and",
            }
        })
    for phrase in parsed.phrases:
        must.append({
            "bool": {
                "should": [
                    {"match_phrase": {name: {"query": phrase, "boost": boost}}} for name, boost in _FIELD_BOOSTS.items()
                ],
                "minimum_should_match": 1,
            }
        })

    filters: list[dict[str, Any]] = []
    if query.filters.doc_type:
        filters.append({"terms": {"doc_type": list(query.filters.doc_type)}})
    for name, value in query.filters.keyword_filters().items():
        filters.append({"term": {name: value}})
    date_range: dict[str, str] = {}
    if query.filters.date_from is not None:
        date_range["gte"] = format_datetime(query.filters.date_from)
    if query.filters.date_to is not None:
        date_range["lt"] = format_datetime(query.filters.date_to)
    if date_range:
        filters.append({"range": {"published_at": date_range}})

    bool_query: dict[str, Any] = {}
    if must:
        bool_query["must"] = must
    else:
        bool_query["must"] = [{"match_all": {}}]
    if filters:
        bool_query["filter"] = filters

    if query.effective_sort == "date":
        sort: list[Any] = [{"published_at": {"order": "desc"}}, {"doc_id": {"order": "asc"}}]
    else:
        sort = ["_score", {"published_at": {"order": "desc"}}, {"doc_id": {"order": "asc"}}]

    return {
        "query": {"bool": bool_query},
        "aggs": {
            name: {"terms": {"field": FACET_FIELDS[name], "size": facet_size}} for name in FACET_NAMES
        },
        "highlight": {
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            # html encoder: the text around the tags is escaped, so a <script> in a document comes back inert.
            "encoder": "html",
            "fields": {
                "title": {"number_of_fragments": 0},
                "body": {"fragment_size": SNIPPET_SIZE, "number_of_fragments": 2, "no_match_size": SNIPPET_SIZE},
            },
        },
        "sort": sort,
        "from": query.offset,
        "size": query.per_page,
        "track_total_hits": True,
        "track_scores": True,
        "_source": {"excludes": ["body"]},
    }


def search_kwargs(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as keyword arguments of `Elasticsearch.search` (from → from_, _source → source)."""
    renamed = {"from": "from_", "_source": "source"}
    return {renamed.get(key, key): value for key, value in body.items()}


def parse_search_response(response: Mapping[str, Any], query: SearchQuery) -> SearchResult:
    hits = []
    for raw in response["hits"]["hits"]:
        source = dict(raw.get("_source") or {})
        highlight = raw.get("highlight") or {}
        hits.append(Hit(
            doc_id=raw["_id"],
            doc_type=source.get("doc_type", ""),
            title=source.get("title", ""),
            url=source.get("url", ""),
            score=float(raw.get("_score") or 0.0),
            highlights={name: list(snippets) for name, snippets in highlight.items()},
            source=source,
        ))
    total = response["hits"]["total"]
    aggregations = response.get("aggregations") or {}
    facets = {
        name: [
            FacetCount(str(bucket["key"]), int(bucket["doc_count"]))
            for bucket in aggregations.get(name, {}).get("buckets", [])
        ]
        for name in FACET_NAMES
    }
    return SearchResult(
        hits=hits,
        total=int(total["value"] if isinstance(total, Mapping) else total),
        facets=facets,
        page=query.page,
        per_page=query.per_page,
    )


def mget_body(doc_ids: Iterable[str], prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """The _mget request body fetching documents by id from their family's serving alias (realtime, whole source).

    Ids of no known document type were never indexed and are left out.
    """
    docs = []
    for doc_id in doc_ids:
        definition = DOCUMENT_DEFINITIONS.get(str(doc_id).split(":", 1)[0])
        if definition is not None:
            docs.append({"_index": alias_name(definition.family, prefix), "_id": str(doc_id)})
    return {"docs": docs}


def stored_document(doc_id: str, source: Mapping[str, Any]) -> StoredDocument:
    """A StoredDocument from a document's _source (its body apart, the other public fields as they are)."""
    fields = dict(source or {})
    body = fields.pop("body", "") or ""
    return StoredDocument(
        doc_id=str(fields.get("doc_id") or doc_id), doc_type=fields.get("doc_type") or "",
        title=fields.get("title") or "", body=body, url=fields.get("url") or "", source=fields,
    )


def parse_mget_response(response: Mapping[str, Any]) -> dict[str, StoredDocument]:
    """Found documents by id; a per-document error (e.g. a missing index) is raised, not taken for "not found"."""
    documents: dict[str, StoredDocument] = {}
    for raw in response.get("docs") or []:
        if raw.get("error"):
            error = raw["error"]
            reason = error.get("type") if isinstance(error, Mapping) else str(error)
            raise SearchBackendError(f"Elasticsearch could not get {raw.get('_id')}: {reason}")
        if not raw.get("found"):
            continue
        documents[raw["_id"]] = stored_document(raw["_id"], raw.get("_source") or {})
    return documents


# -- writes -------------------------------------------------------------------------------------------------------


def bulk_index_actions(docs: Iterable[SearchDocument], targets: Mapping[str, Sequence[str]]) -> Iterator[dict]:
    """Index actions with external versions: an older or equal version is a conflict that leaves the newer in place.

    `targets` maps a family to the indices or aliases to write (the serving alias, plus a building one mid-reindex).
    """
    for doc in docs:
        if not isinstance(doc, SearchDocument):
            raise InvalidDocument({"doc": "must be a SearchDocument made by search.documents.build_document"})
        for index in targets[doc.family]:
            yield {
                "_op_type": "index",
                "_index": index,
                "_id": doc.doc_id,
                "version": doc.version,
                "version_type": "external",
                "_source": doc.to_source(),
            }


def bulk_delete_actions(doc_ids: Iterable[str], targets: Sequence[str]) -> Iterator[dict]:
    for doc_id in doc_ids:
        for index in targets:
            yield {"_op_type": "delete", "_index": index, "_id": doc_id}


def alias_swap_actions(alias: str, new_index: str, old_indices: Iterable[str], building_alias: str | None = None) -> list:
    """Actions for one atomic `indices.update_aliases` call: the alias leaves the old indices and lands on the new."""
    actions: list[dict[str, Any]] = [{"remove": {"index": index, "alias": alias}} for index in old_indices]
    actions.append({"add": {"index": new_index, "alias": alias, "is_write_index": True}})
    if building_alias is not None:
        actions.append({"remove": {"index": new_index, "alias": building_alias}})
    return actions


def building_indices_by_family(get_alias_response: Mapping[str, Any], prefix: str = DEFAULT_PREFIX) -> dict:
    """From `indices.get_alias(name="tb-*-building")` ({index: {"aliases": {alias: {}}}}) to {family: [index]}."""
    by_family: dict[str, list[str]] = {family: [] for family in DOCUMENT_FAMILIES}
    wanted = {building_alias_name(family, prefix): family for family in DOCUMENT_FAMILIES}
    for index, entry in sorted(get_alias_response.items()):
        for alias in (entry or {}).get("aliases", {}):
            if alias in wanted:
                by_family[wanted[alias]].append(index)
    return by_family


def _error_type(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return str(body["error"].get("type", ""))
    return str(getattr(exc, "error", ""))


# -- the backend --------------------------------------------------------------------------------------------------


class ElasticsearchSearchBackend(SearchBackend):
    """Search over an Elasticsearch 8 (or 9) cluster through the official client.

    `refresh` is what writes ask for: False for throughput (bulk loads, event handlers) or "wait_for" when the caller
    must read its own writes (tests, an editor saving and searching at once).
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        analyzer: str = "auto",
        refresh: bool | str = False,
        chunk_size: int = 500,
        max_retries: int = 5,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        number_of_shards: int = 1,
        number_of_replicas: int = 1,
    ):
        if analyzer not in ANALYZER_CHOICES:
            raise ValueError(f"analyzer must be one of {', '.join(ANALYZER_CHOICES)}, not {analyzer!r}")
        self.client = client
        self.prefix = prefix
        self.configured_analyzer = analyzer
        self.refresh = refresh
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.number_of_shards = number_of_shards
        self.number_of_replicas = number_of_replicas
        self._analyzer: str | None = None

    @classmethod
    def from_url(cls, url: str, *, request_timeout: float = 10.0, **options: Any) -> ElasticsearchSearchBackend:
        from elasticsearch import Elasticsearch

        return cls(Elasticsearch(url, request_timeout=request_timeout, retry_on_timeout=True), **options)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ElasticsearchSearchBackend:
        """Build from the SEARCH section of the service config (elasticsearch_url, analyzer, index_prefix, and
        optionally refresh, number_of_shards, number_of_replicas, request_timeout)."""
        options: dict[str, Any] = {
            "prefix": settings.get("index_prefix") or DEFAULT_PREFIX,
            "analyzer": settings.get("analyzer") or "auto",
        }
        refresh = settings.get("refresh")
        if refresh not in (None, ""):
            options["refresh"] = refresh if refresh == "wait_for" else str(refresh).lower() in ("1", "true", "yes")
        for name in ("number_of_shards", "number_of_replicas"):
            if settings.get(name) not in (None, ""):
                options[name] = int(settings[name])
        timeout = float(settings.get("request_timeout") or 10.0)
        return cls.from_url(settings.get("elasticsearch_url") or "http://127.0.0.1:9200",
                            request_timeout=timeout, **options)

    @property
    def aliases(self) -> list[str]:
        return [alias_name(family, self.prefix) for family in DOCUMENT_FAMILIES]

    def _call(self, what: str, function: Any, /, *args: Any, **kwargs: Any) -> Any:
        from elasticsearch import ApiError, ConnectionError, ConnectionTimeout

        try:
            return function(*args, **kwargs)
        except (ConnectionError, ConnectionTimeout) as exc:
            raise SearchBackendUnavailable(f"Elasticsearch unreachable during {what}: {exc}") from exc
        except ApiError as exc:
            raise SearchBackendError(f"Elasticsearch refused {what}: {exc}") from exc

    def request(self, what: str, function: Any, /, *args: Any, ignore_status: Sequence[int] = (), **kwargs: Any) -> Any:
        """Send one client call with this backend's error mapping; an answer with a status in `ignore_status` (e.g.
        409 for a newer external version already stored) returns None instead of raising."""
        try:
            return self._call(what, function, *args, **kwargs)
        except SearchBackendError as exc:
            if getattr(exc.__cause__, "status_code", None) in ignore_status:
                return None
            raise

    def bulk(self, actions: Iterable[dict], *, refresh: bool | str | None = None) -> tuple[int, int]:
        """Send prepared bulk actions (retrying 429s); returns (applied, ignored: older versions, missing deletes)."""
        return self._bulk(actions, self.refresh if refresh is None else refresh)

    @property
    def analyzer(self) -> str:
        if self._analyzer is None:
            plugins: set[str] = set()
            if self.configured_analyzer != "cjk":
                response = self._call("listing plugins", self.client.cat.plugins, format="json")
                plugins = installed_plugin_names(getattr(response, "body", response))
            self._analyzer = choose_analyzer(self.configured_analyzer, plugins)
            log.info("search analyzer: %s (configured %s)", self._analyzer, self.configured_analyzer)
        return self._analyzer

    def ensure_schema(self) -> None:
        from elasticsearch import BadRequestError

        for family in DOCUMENT_FAMILIES:
            body = index_template_body(
                family, self.analyzer, prefix=self.prefix,
                number_of_shards=self.number_of_shards, number_of_replicas=self.number_of_replicas,
            )
            self._call("put_index_template", self.client.indices.put_index_template,
                       name=alias_name(family, self.prefix), **body)
            alias = alias_name(family, self.prefix)
            if self._call("exists_alias", self.client.indices.exists_alias, name=alias):
                continue
            try:
                self.client.indices.create(index=f"{alias}-v1", aliases={alias: {"is_write_index": True}})
            except BadRequestError as exc:
                if _error_type(exc) != "resource_already_exists_exception":
                    raise SearchBackendError(f"cannot create {alias}-v1: {exc}") from exc
                # Another process created it at the same moment (fine), or it exists without its alias (not fine).
                if not self._call("exists_alias", self.client.indices.exists_alias, name=alias):
                    raise SearchBackendError(
                        f"index {alias}-v1 exists but alias {alias} does not; run a reindex to rebuild"
                    ) from exc

    def _building_indices(self) -> dict[str, list[str]]:
        """Indices being rebuilt right now, by family (one request; a wildcard answers {} when there are none)."""
        response = self._call(
            "get building aliases", self.client.indices.get_alias, name=building_alias_name("*", self.prefix)
        )
        return building_indices_by_family(getattr(response, "body", response), self.prefix)

    def _bulk(self, actions: Iterable[dict], refresh: bool | str) -> tuple[int, int]:
        """Send actions in bounded chunks, retrying 429 rejections with back-off; returns (applied, ignored)."""
        from elasticsearch.helpers import streaming_bulk

        applied = ignored = 0
        failures: list[str] = []
        results = streaming_bulk(
            self.client,
            actions,
            chunk_size=self.chunk_size,
            max_retries=self.max_retries,
            initial_backoff=self.initial_backoff,
            max_backoff=self.max_backoff,
            raise_on_error=False,
            refresh=refresh,
        )
        for ok, item in self._call("bulk", list, results):
            operation, result = next(iter(item.items()))
            status = result.get("status")
            if ok:
                if operation == "delete" and result.get("result") == "not_found":
                    ignored += 1
                else:
                    applied += 1
            elif status == 409 or (operation == "delete" and status == 404):
                ignored += 1  # an older version, or already gone: idempotent by design
            else:
                error = result.get("error") or {}
                reason = error.get("type") if isinstance(error, Mapping) else str(error)
                failures.append(f"{result.get('_id')}: {status} {reason}")
        if failures:
            raise SearchBackendError(f"{len(failures)} bulk actions failed, e.g. {'; '.join(failures[:3])}")
        return applied, ignored

    def upsert(self, docs: Iterable[SearchDocument], *, refresh: bool | str | None = None) -> int:
        """Index documents; returns how many the serving index took (older versions are ignored, not errors)."""
        docs = list(docs)
        refresh = self.refresh if refresh is None else refresh
        serving = {family: [alias_name(family, self.prefix)] for family in DOCUMENT_FAMILIES}
        applied, _ = self._bulk(bulk_index_actions(docs, serving), refresh)
        building = self._building_indices()
        if any(building.values()):
            self._bulk(bulk_index_actions(docs, building), refresh)
        return applied

    def delete(self, doc_ids: Iterable[str], *, refresh: bool | str | None = None) -> int:
        refresh = self.refresh if refresh is None else refresh
        by_family: dict[str, list[str]] = {}
        for doc_id in doc_ids:
            definition = DOCUMENT_DEFINITIONS.get(str(doc_id).split(":", 1)[0])
            if definition is not None:  # an id of no known type was never indexed
                by_family.setdefault(definition.family, []).append(doc_id)
        removed = 0
        building = self._building_indices()
        for family, family_ids in by_family.items():
            applied, _ = self._bulk(bulk_delete_actions(family_ids, [alias_name(family, self.prefix)]), refresh)
            removed += applied
            if building[family]:
                self._bulk(bulk_delete_actions(family_ids, building[family]), refresh)
        return removed

    def search(self, query: SearchQuery) -> SearchResult:
        body = search_body(query, facet_size=self.facet_size)
        response = self._call("search", self.client.search, index=",".join(self.aliases), **search_kwargs(body))
        return parse_search_response(getattr(response, "body", response), query)

    def get_documents(self, doc_ids: Iterable[str]) -> dict[str, StoredDocument]:
        body = mget_body(checked_fetch_ids(doc_ids), self.prefix)
        if not body["docs"]:
            return {}
        response = self._call("mget", self.client.mget, **body)
        return parse_mget_response(getattr(response, "body", response))

    def reindex(self, source_iter: Iterable[SearchDocument]) -> int:
        """New versioned indices, bulk-filled, then one atomic alias swap; the old indices go after the swap."""
        self.ensure_schema()
        running = [index for indices in self._building_indices().values() for index in indices]
        if running:
            raise SearchBackendError(
                f"a reindex is already running into {', '.join(running)}; if its process died, delete those indices"
            )
        existing = self._call("list indices", self.client.indices.get, index=f"{self.prefix}-*")
        existing_names = list(getattr(existing, "body", existing))
        new_indices: dict[str, str] = {}
        old_indices: dict[str, list[str]] = {}
        try:
            for family in DOCUMENT_FAMILIES:
                alias = alias_name(family, self.prefix)
                new_index = next_index_name(family, existing_names, self.prefix)
                self._call("create index", self.client.indices.create, index=new_index,
                           aliases={building_alias_name(family, self.prefix): {}})
                new_indices[family] = new_index
                serving = self._call("get alias", self.client.indices.get_alias, name=alias)
                old_indices[family] = sorted(getattr(serving, "body", serving))
            targets = {family: [index] for family, index in new_indices.items()}
            applied, ignored = self._bulk(bulk_index_actions(source_iter, targets), False)
            self._call("refresh", self.client.indices.refresh, index=",".join(new_indices.values()))
            actions: list[dict[str, Any]] = []
            for family, new_index in new_indices.items():
                actions += alias_swap_actions(
                    alias_name(family, self.prefix), new_index, old_indices[family],
                    building_alias_name(family, self.prefix),
                )
            self._call("alias swap", self.client.indices.update_aliases, actions=actions)
        except BaseException:
            for index in new_indices.values():
                try:
                    self.client.indices.delete(index=index, ignore_unavailable=True)
                except Exception:  # noqa: BLE001 - best effort cleanup; the original error matters more
                    log.warning("could not remove half-built index %s", index)
            raise
        stale = [index for indices in old_indices.values() for index in indices]
        if stale:
            self._call("delete old indices", self.client.indices.delete, index=",".join(stale))
        return applied + ignored

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:  # noqa: BLE001 - ping answers a yes/no question, whatever went wrong
            return False

    def count(self) -> int:
        response = self._call("count", self.client.count, index=",".join(self.aliases))
        return int(getattr(response, "body", response)["count"])

    def close(self) -> None:
        self.client.close()


# The name the search service configures by.
ElasticsearchBackend = ElasticsearchSearchBackend
