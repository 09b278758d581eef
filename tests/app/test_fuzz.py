"""Property: whatever arrives at /invocations, the answer is never a 500 and the server lives."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ANSWERED = {200, 400, 406, 413, 415, 429, 504}

header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/jsonlines",
            "text/csv",
            "text/plain",
            "application/json; charset=utf-8",
            "text/csv; charset=latin-1",
            "",
        ]
    ),
    header_text,
)
accepts = st.one_of(
    st.sampled_from(["", "*/*", "application/json", "text/csv", "application/jsonlines"]),
    header_text,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
hf_requests = st.fixed_dictionaries(
    {
        "inputs": st.one_of(
            st.text(max_size=200), st.lists(st.text(max_size=50), max_size=8), json_values
        )
    },
    optional={
        "parameters": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "top_k": st.one_of(st.none(), st.integers(-3, 10), json_values),
                    "truncation": json_values,
                },
            ),
            json_values,
        )
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    hf_requests.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.lists(st.one_of(st.text(max_size=40), json_values), max_size=6).map(
        lambda lines: "\n".join(json.dumps(line) for line in lines).encode()
    ),
    st.text(max_size=300).map(str.encode),
)


@settings(
    max_examples=100,
    database=None,  # leave no .hypothesis/ folder in the working tree
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    content_type=content_types,
    accept=accepts,
    attributes=st.one_of(st.none(), header_text),
)
def test_no_input_gives_a_500(
    client: TestClient, body: bytes, content_type: str, accept: str, attributes: str | None
) -> None:
    headers = {"Content-Type": content_type, "Accept": accept}
    if attributes is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code in ANSWERED, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert error["request_id"] == response.headers["x-request-id"]
    assert client.get("/ping").status_code == 200
