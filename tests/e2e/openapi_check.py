"""Validate real responses against docs/openapi.yaml (OpenAPI 3.0.3).

The document is loaded with PyYAML (python3-yaml) and its schemas are turned into JSON Schema
for python3-jsonschema: `nullable: true` becomes anyOf [schema, null], and $ref to
#/components/... resolves against the converted document. date-time is checked by an RFC 3339
regex (jsonschema's own checker needs a package Debian does not ship).
"""

import re
from pathlib import Path

import jsonschema
import yaml

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_OAS_ONLY = ("nullable", "example", "deprecated", "readOnly", "writeOnly", "xml",
             "externalDocs", "discriminator")

FORMAT_CHECKER = jsonschema.FormatChecker()


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(value):
    return not isinstance(value, str) or bool(_RFC3339.match(value))


def to_json_schema(node):
    """An OpenAPI 3.0 schema (and everything under it) as JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _OAS_ONLY:
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = to_json_schema(value)
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


class OpenApi:
    def __init__(self, path=DOC_PATH):
        self.raw = yaml.safe_load(Path(path).read_text())
        self.converted = {"components": to_json_schema(self.raw.get("components", {}))}
        self.resolver = jsonschema.RefResolver.from_schema(self.converted)

    def operations(self):
        """{(METHOD, path template)} the document describes."""
        ops = set()
        for path, item in self.raw["paths"].items():
            for method in ("get", "put", "post", "delete", "patch", "head", "options"):
                if method in item:
                    ops.add((method.upper(), path))
        return ops

    def _deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            node = self.raw
            for part in parts:
                node = node[part]
        return node

    def response_schema(self, method, path, status, content_type="application/json"):
        """The JSON Schema of a documented response; KeyError when it is not documented."""
        operation = self.raw["paths"][path][method.lower()]
        responses = operation["responses"]
        key = str(status)
        if key not in responses:
            raise KeyError(f"{method} {path}: status {status} not documented "
                           f"(documented: {sorted(responses)})")
        response = self._deref(responses[key])
        content = response.get("content", {})
        if content_type not in content:
            raise KeyError(f"{method} {path} {status}: no {content_type} content "
                           f"(documented: {sorted(content)})")
        return to_json_schema(content[content_type]["schema"])

    def component_schema(self, name):
        return {"$ref": f"#/components/schemas/{name}"}

    def validate(self, instance, schema):
        """jsonschema.ValidationError (with every problem in its message) when invalid."""
        validator = jsonschema.Draft7Validator(schema, resolver=self.resolver,
                                               format_checker=FORMAT_CHECKER)
        problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if problems:
            lines = [f"  at {'/'.join(map(str, p.absolute_path)) or '<root>'}: {p.message}"
                     for p in problems[:20]]
            raise jsonschema.ValidationError("response does not match the schema:\n" +
                                             "\n".join(lines))

    def check_response(self, method, path, status, body, content_type="application/json"):
        self.validate(body, self.response_schema(method, path, status, content_type))


_ROUTE_RE = re.compile(r'\{\s*"(GET|POST|PUT|DELETE|PATCH)"\s*,\s*"(/[^"]*)"')


def gateway_routes(source):
    """{(METHOD, path with {} for each parameter)} of gateway_routes.c's s_routes table."""
    text = Path(source).read_text()
    table = text[text.index("s_routes[]"):]
    table = table[:table.index("};")]
    return {(m, normalize(p)) for m, p in _ROUTE_RE.findall(table)}


def normalize(path):
    return re.sub(r"\{[^}]*\}", "{}", path)
