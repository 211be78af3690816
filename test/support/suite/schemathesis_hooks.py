"""Teaches Schemathesis the formats the API's OpenAPI document names but JSON Schema cannot state.

Loaded through SCHEMATHESIS_HOOKS by test/integration/suite-schemathesis.test.ts.
"""
import re
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

# pm-tag-expression (lib/lifecycle/tag-expression.ts): PVE tags joined by & and |, negated
# with !, grouped with parentheses.
_tag = st.from_regex(r"\A[a-z0-9_][a-z0-9_.+-]{0,15}\Z")
_expression = st.recursive(
    _tag,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" & ", " | ", "&", "|"]), inner).map("".join),
        inner.map(lambda e: "!" + e),
        inner.map(lambda e: "(" + e + ")"),
    ),
    max_leaves=6,
)

schemathesis.openapi.format("pm-tag-expression", _expression)

# pm-runbook-markdown (docs/runbooks.md): a runbook document with YAML front matter; the
# shipped runbooks are valid ones.
_runbooks = Path(__file__).resolve().parents[3] / "runbooks"
_documents = sorted(p.read_text() for p in _runbooks.glob("*.md") if not p.name.startswith("_"))
schemathesis.openapi.format("pm-runbook-markdown", st.sampled_from(_documents))

# pageToken (GET /v1/operations): only a nextPageToken the API issued is valid, which a pattern
# cannot state; generated requests carry none (test/unit/api-operations.test.ts checks that an
# invented one is answered 400 naming pageToken).
@schemathesis.hook
def map_query(context, query):
    if query:
        query.pop("pageToken", None)
    return query


# Operation ids (path parameter `id`): printable ASCII, as the document's pattern says, sent
# URL-encoded. Schemathesis sends a generated `%` followed by two hex digits as it is, so the
# server decodes it, a byte above 0x7f into U+FFFD, and rightly answers 400, which the check
# then calls a rejection of valid data; such ids are not generated. (Escapes of ASCII, as in
# the ids it reuses from links.self, decode to valid ids and stay.)
_undecoded_escape = re.compile(r"%[89A-Fa-f][0-9A-Fa-f]")


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    value = (path_parameters or {}).get("id")
    return not isinstance(value, str) or _undecoded_escape.search(value) is None
