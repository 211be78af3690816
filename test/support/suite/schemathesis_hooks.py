"""Teaches Schemathesis the formats the API's OpenAPI document names but JSON Schema cannot state.

Loaded through SCHEMATHESIS_HOOKS by test/integration/suite-schemathesis.test.ts.
"""
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
