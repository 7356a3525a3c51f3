"""Request and response bodies of the HTTP API (they also make the OpenAPI schema and its examples).

Content rules that do not depend on the config live here (non-empty text, no unpaired surrogates); size
limits are config-dependent and checked by the routes, which answer 413 naming the offending item.
`contract` writes those limits, the loaded tasks and the auth rules into the served OpenAPI document, so
that what the schema allows the server accepts, and what it forbids the server refuses (schemathesis checks
both in tests/test_serve_contract.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Task = Literal["classifier", "ner"]

EXAMPLE_TEXTS = [
    "Russian missiles struck Kyiv overnight, the mayor said, as air defences shot down 20 Shahed drones.",
    "Subscribe to our newsletter for the latest updates.",
]


# check_text's rule "not empty or whitespace only" as a JSON Schema pattern: at least one character that
# str.isspace() does not count as space (all such characters are in the BMP). The characters are listed rather
# than written `\S` because regex engines disagree on what `\s` covers (ECMA's omits U+001C..U+001F).
WHITESPACE = "".join(c for c in map(chr, range(0x10000)) if c.isspace())
NON_BLANK = "[^" + WHITESPACE + "]"
TEXT_SCHEMA = {"minLength": 1, "pattern": NON_BLANK}
Text = Annotated[str, Field(json_schema_extra=TEXT_SCHEMA)]


class Request(BaseModel):
    # Unknown keys are refused: a misspelt "task" must not silently run every task.
    model_config = ConfigDict(extra="forbid")


def check_text(text: str, where: str) -> str:
    if not text.strip():
        raise ValueError(f"{where} is empty or whitespace only")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # "\ud800" is valid JSON but no valid text: the tokenizer would choke
        raise ValueError(f"{where} contains an unpaired surrogate at character {err.start}") from None
    return text


class PredictRequest(Request):
    texts: list[Text] = Field(min_length=1, description="Paragraphs to predict, answered in the same order; "
                              "each needs a character that is not whitespace.")
    tasks: list[Task] | None = Field(default=None, min_length=1,
                                     description="Which models to run; default: every loaded model.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": EXAMPLE_TEXTS}, {"texts": EXAMPLE_TEXTS[:1], "tasks": ["ner"]}]})

    @field_validator("texts")
    @classmethod
    def _texts(cls, texts: list[str]) -> list[str]:
        for index, text in enumerate(texts):
            check_text(text, f"texts[{index}]")
        return texts


class ArticleRequest(Request):
    id: str | None = Field(default=None, max_length=512, description="Echoed back.")
    text: str | None = Field(default=None, json_schema_extra=TEXT_SCHEMA,
                             description="Article text; paragraphs are separated by blank lines.")
    html: str | None = Field(default=None, json_schema_extra=TEXT_SCHEMA,
                             description="Article HTML; block elements become paragraphs.")
    tasks: list[Task] | None = Field(default=None, min_length=1)

    # _one_source in JSON Schema: exactly one of text / html is a string (null counts as absent).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in ("text", "html")], "examples": [
        {"id": "a1", "text": "Kyiv came under attack overnight.\n\nSubscribe to our newsletter."},
        {"id": "a2", "html": "<html><body><h1>Strikes on Odesa</h1><p>Russia launched drones at Odesa.</p>"
                             "</body></html>"},
    ]})

    @model_validator(mode="after")
    def _one_source(self) -> ArticleRequest:
        if (self.text is None) == (self.html is None):
            raise ValueError("give exactly one of 'text' or 'html'")
        check_text(self.text if self.text is not None else self.html or "", "text" if self.text is not None
                   else "html")
        return self


class Entity(BaseModel):
    start: int = Field(description="Character offset in the text (Unicode code points), inclusive.")
    end: int = Field(description="Character offset, exclusive.")
    label: str
    score: float
    text: str


class Prediction(BaseModel):
    labels: list[str] | None = Field(
        default=None, description="Topics at or over their threshold (absent when the classifier did not run).")
    scores: dict[str, float] | None = Field(default=None, description="Sigmoid score per topic.")
    entities: list[Entity] | None = Field(default=None, description="Absent when the NER model did not run.")


class ModelDescription(BaseModel):
    name: str
    version: str | None = Field(description="Registry version; null for a model dir.")
    alias: str | None = Field(description="Registry alias the version was found through.")
    source: str
    backend: str


def _example_prediction() -> dict:
    """The OpenAPI example for EXAMPLE_TEXTS[0], in the configured label schema's names (configs/labels.yaml)."""
    from frontwire.schema import load_schema

    schema = load_schema()
    topics = schema.topic_names
    text = EXAMPLE_TEXTS[0]
    spans = [{"start": text.index(name), "end": text.index(name) + len(name), "label": label, "score": score,
              "text": name} for name, label, score in (("Kyiv", "LOC", 0.98), ("Shahed drones", "WEAPON", 0.91))]
    return {
        "labels": topics[:1],
        "scores": {name: 0.93 if i == 0 else 0.04 for i, name in enumerate(topics)},
        "entities": [span for span in spans if span["label"] in schema.entity_names],
    }


EXAMPLE_PREDICTION = _example_prediction()
EXAMPLE_MODELS = {"classifier": {"name": "frontwire-classifier", "version": "3", "alias": "champion",
                                 "source": "models:/frontwire-classifier@champion", "backend": "onnx"},
                  "ner": {"name": "frontwire-ner", "version": "2", "alias": "champion",
                          "source": "models:/frontwire-ner@champion", "backend": "onnx"}}


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    models: dict[str, ModelDescription]

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"predictions": [EXAMPLE_PREDICTION], "models": EXAMPLE_MODELS}]})


class ParagraphPrediction(Prediction):
    index: int
    start: int = Field(description="Offset of the paragraph in the article text (for HTML: in `text`).")
    end: int
    text: str


class ArticleResponse(BaseModel):
    id: str | None = None
    text: str | None = Field(default=None, description="For HTML input: the extracted text the offsets index.")
    paragraphs: list[ParagraphPrediction]
    models: dict[str, ModelDescription]


class ReloadRequest(Request):
    classifier: str | None = Field(default=None, description="Model dir or models:/name@alias; default: config.")
    ner: str | None = None


class ReloadResponse(BaseModel):
    changed: bool
    models: dict[str, ModelDescription]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong, naming the offending item.")
    errors: list[dict[str, str]] | None = None


AUTH_PREFIXES = ("/v1/", "/admin/")
# Probes and metrics answer under any load (no concurrency limit): an operator must see an overloaded server.
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics")
RETRY_AFTER = {"Retry-After": {"required": True, "description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}
BEARER = {"type": "http", "scheme": "bearer", "description": "The server's token (auth.token_env)."}


def _narrow_tasks(node: Any, tasks: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("enum") == ["classifier", "ner"]:
            node["enum"] = tasks
        for value in node.values():
            _narrow_tasks(value, tasks)
    elif isinstance(node, list):
        for value in node:
            _narrow_tasks(value, tasks)


def contract(openapi: dict[str, Any], max_texts: int, max_chars: int, max_article_chars: int,
             tasks: list[str], token: bool) -> dict[str, Any]:
    """The generated OpenAPI document made to say what this server does (changed in place and returned).

    Size limits come from the config, so they are written here rather than in the models; the routes still
    answer 413 beyond them. Security is declared only when a token is set, because only then is it checked;
    without one, /admin/reload is refused with 403 (reloading is never open to anyone on the network)."""
    bodies = openapi["components"]["schemas"]
    texts = bodies["PredictRequest"]["properties"]["texts"]
    texts["maxItems"], texts["items"]["maxLength"] = max_texts, max_chars
    for name in ("text", "html"):
        bodies["ArticleRequest"]["properties"][name]["maxLength"] = max_article_chars
    _narrow_tasks(bodies, tasks)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    if token:
        openapi["components"].setdefault("securitySchemes", {})["bearer"] = BEARER
    for path, operations in openapi["paths"].items():
        if path not in UNLIMITED_PATHS:
            for operation in operations.values():
                operation["responses"].setdefault("503", {
                    "description": "Shed: more requests in progress than server.limit_concurrency.",
                    "headers": RETRY_AFTER, **error})
        if not path.startswith(AUTH_PREFIXES):
            continue
        for operation in operations.values():
            if token:
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = {"description": "Missing or wrong bearer token.", **error}
            elif path.startswith("/admin/"):
                operation["responses"]["403"] = {"description": "No token is configured: reload is off.", **error}
    return openapi
