"""The API's request parsers (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]). Kept apart from
`batchsite.api`, which imports DRF's views: those read the parser setting when imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from batchsite.json_input import InvalidJson, json_loads


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, but a body nested too deep (or not JSON at all) is a 400
    `invalid_json` instead of a RecursionError and a 500."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return json_loads(stream.read())
        except InvalidJson as exc:
            raise ParseError(
                f"The request body is not valid JSON: {exc}.", "invalid_json"
            ) from None
