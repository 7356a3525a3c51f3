"""The inspection page (`GET /`) in a real browser: Playwright drives Debian's Chromium against the app that
`frontwire serve` builds, run by uvicorn on a free loopback port with the tiny models.

The page is a client of /v1/models and /v1/articles; every figure it shows is checked against what those
endpoints answered to it (the responses are read off the wire, not recomputed).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frontwire.modeling import ModelMeta
from frontwire.paragraphs import split_text
from frontwire.predictor import Predictor
from frontwire.schema import load_schema

REQUIRE_CHROMIUM_ENV = "FRONTWIRE_REQUIRE_CHROMIUM"
TOKEN = "ui-test-token-5678"
MAX_PARAGRAPHS = 3  # so the live blog below takes several requests: the page's splitting is exercised
# A live blog with its publisher chrome. The emoji (two UTF-16 units, one code point) come before names, so a
# page that cut the API's code-point offsets as UTF-16 would highlight the wrong characters.
LIVE_BLOG = """🔴 Live: Russian missiles struck Kyiv overnight, Mayor Vitali Klitschko said on Telegram.

Subscribe to Premium for ad-free reading and exclusive analysis of the war in Ukraine.

Zelenskyy met Biden in Washington to discuss F-16 deliveries and new sanctions on Gazprom.

  🇺🇦 Ukrainian forces advanced near Bakhmut, the general staff in Kyiv said.\u3000

Join our commenting forum. Follow us on Facebook and Twitter.


The EU agreed a new package of sanctions on Russian oil, Ursula von der Leyen said in Brussels."""
CHROME = (1, 4)  # paragraph indices of the publisher chrome above


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    reason = "no chromium executable (Debian: apt-get install -y chromium)"
    if os.environ.get(REQUIRE_CHROMIUM_ENV) == "1":  # CI: a missing browser is a failure, not a skip
        pytest.fail(f"{REQUIRE_CHROMIUM_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def chrome_thresholds(classifier_dir: Path, ner_dir: Path, texts: list[str]) -> dict[str, float]:
    """Thresholds under which the chrome paragraphs, and only they, are boilerplate.

    The tiny classifier is trained for two steps: its scores are noise, so its own thresholds mark chrome by
    chance. What the page must show is what the API decides, so the thresholds are set from the scores the
    same predictor gives these paragraphs: boilerplate just under the chrome paragraphs' lowest score and over
    every news paragraph's, and each other topic over the chrome paragraphs' scores (an exclusive label loses
    to a larger margin elsewhere), between its news scores so that some news chips are on and some off.
    """
    scores = [p["scores"] for p in Predictor(classifier_dir, ner_dir, device="cpu").predict(texts, ("classifier",))]
    schema = load_schema()
    thresholds: dict[str, float] = {}
    for label in schema.topic_names:
        chrome = [scores[i][label] for i in CHROME]
        news = sorted(row[label] for i, row in enumerate(scores) if i not in CHROME)
        if label in schema.exclusive_topics:
            gap = min(chrome) - max(news)
            # scores come rounded to 4 places: a gap much wider than that keeps the decision unambiguous
            if gap < 0.001:
                pytest.fail(f"tiny classifier gives chrome no higher {label} score than news ({scores})")
            thresholds[label] = min(chrome) - gap / 2
        else:
            thresholds[label] = max(max(chrome) + 0.001, news[len(news) // 2])
    return thresholds


class Server:
    """uvicorn on the app `frontwire serve` builds (serve.server.build_app), in a thread of this process."""

    def __init__(self, overrides: list[str]) -> None:
        import uvicorn

        from frontwire.serve.loadtest import free_port
        from frontwire.serve.server import build_app
        from frontwire.serve.settings import load_serve_config

        self.port = free_port()
        app = build_app(load_serve_config(None, overrides))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError("server not ready after 120 s")

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


@pytest.fixture(scope="module")
def models(tiny_models, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the tiny classifier whose thresholds make the chrome paragraphs boilerplate (see above)."""
    classifier = tmp_path_factory.mktemp("ui-models") / "classifier"
    shutil.copytree(tiny_models.classifier_dir, classifier)
    meta = ModelMeta.load(classifier)
    texts = [p.text for p in split_text(LIVE_BLOG)]
    meta.thresholds = chrome_thresholds(classifier, tiny_models.ner_dir, texts)
    meta.save(classifier)
    return classifier, tiny_models.ner_dir


def overrides(models: tuple[Path, Path], *extra: str) -> list[str]:
    classifier, ner = models
    return [f"models.classifier={classifier}", f"models.ner={ner}", "models.backend=torch",
            f"limits.max_paragraphs={MAX_PARAGRAPHS}", *extra]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield browser
        browser.close()


class Watched:
    """A page with its console errors, uncaught exceptions and /v1/ traffic recorded."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list = []
        self.answers: list[dict] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda err: self.errors.append(f"pageerror: {err}"))
        self.page.on("request", lambda r: self.requests.append(r) if "/v1/" in r.url else None)
        self.page.on("response", self._response)

    def _response(self, response) -> None:
        if response.url.endswith("/v1/articles") and response.status == 200:
            self.answers.append(response.json())

    def script_errors(self, *expected_statuses: int) -> list[str]:
        """Console errors, less Chromium's own line for an HTTP error status the test provoked on purpose."""
        allowed = tuple(f"the server responded with a status of {status}" for status in expected_statuses)
        return [e for e in self.errors if not any(a in e for a in allowed)]

    def submit(self, text: str) -> str:
        page = self.page
        page.fill("#article", text)
        page.click("#submit")
        page.wait_for_selector("body[data-done]", timeout=30_000)
        return page.get_attribute("body", "data-done")


@pytest.fixture(scope="module")
def open_server(models) -> Iterator[Server]:
    with Server(overrides(models)) as server:
        yield server


def test_page_shows_paragraphs_entities_and_chrome_as_the_api_answered(open_server, browser, tmp_path) -> None:
    watched = Watched(browser)
    page = watched.page
    started = time.perf_counter()
    page.goto(open_server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    served = httpx.get(f"{open_server.url}/v1/models").json()["models"]
    header = page.inner_text("#models")
    assert [li.get_attribute("data-kind") for li in page.query_selector_all("#models li")] == list(served)
    assert all(model["name"] in header and f"@{model['schema']['version']}" in header for model in served.values())
    schema = load_schema()
    assert served["ner"]["entity_colours"] == schema.entity_colours  # the Label Studio config's colours
    legend = page.eval_on_selector_all("#legend .key", "keys => keys.map(k => [k.dataset.entity, "
                                       "k.querySelector('.swatch').style.getPropertyValue('--ent')])")
    assert dict(legend) == schema.entity_colours

    assert watched.submit(LIVE_BLOG) == str(len(split_text(LIVE_BLOG)))
    expected = split_text(LIVE_BLOG)
    # the page cut the article into requests of at most max_paragraphs, in order, each answered in full
    assert len(watched.answers) == math.ceil(len(expected) / MAX_PARAGRAPHS)
    api = [p for answer in watched.answers for p in answer["paragraphs"]]
    assert [p["text"] for p in api] == [p.text for p in expected]
    shown = page.query_selector_all("#results details.para")
    assert len(shown) == len(api) == len(expected)
    # offsets on the page index the whole article in code points, as the server would have given them
    summaries = [box.query_selector("summary").inner_text() for box in shown]
    for box, summary, want in zip(shown, summaries, expected, strict=True):
        assert box.get_attribute("data-index") == str(want.index)
        assert f"{want.start}–{want.end}" in summary
        assert LIVE_BLOG[want.start : want.end] == want.text  # (code points: Python str)

    # every entity the API found is highlighted over exactly its text, in its type's colour, score on hover
    marks = 0
    for box, paragraph in zip(shown, api, strict=True):
        spans = box.query_selector_all("mark.ent")
        assert len(spans) == len(paragraph["entities"])
        for mark, entity in zip(spans, paragraph["entities"], strict=True):
            assert mark.query_selector(".ent-text").text_content() == entity["text"]
            assert mark.get_attribute("data-label") == entity["label"]
            assert mark.evaluate("m => m.style.getPropertyValue('--ent')") == schema.entity_colours[entity["label"]]
            assert f"{entity['score']:.3f}" in mark.get_attribute("title")
            marks += 1
    assert marks > 0, "the tiny NER model tagged nothing: no span to check"

    # boilerplate: exactly the paragraphs the API labelled with the schema's exclusive topic, greyed, collapsed
    boilerplate = schema.exclusive_topics[0]
    marked = [int(box.get_attribute("data-index")) for box in page.query_selector_all("details.para.chrome")]
    assert marked == [i for i, p in enumerate(api) if boilerplate in p["labels"]] == list(CHROME)
    assert all(not box.evaluate("b => b.open") for box in page.query_selector_all("details.para.chrome"))
    assert all(box.evaluate("b => b.open") for box in page.query_selector_all("details.para:not(.chrome)"))
    page.uncheck("#collapse")
    assert all(box.evaluate("b => b.open") for box in page.query_selector_all("details.para.chrome"))

    # label chips: one per topic, on exactly for the API's labels, the threshold tick where the model puts it
    thresholds = served["classifier"]["thresholds"]
    for box, paragraph in zip(shown, api, strict=True):
        chips = box.query_selector_all(".chip")
        assert [c.get_attribute("data-label") for c in chips] == list(paragraph["scores"])
        on = [c.get_attribute("data-label") for c in chips if "on" in c.get_attribute("class").split()]
        assert on == paragraph["labels"]
        for chip in chips:
            label = chip.get_attribute("data-label")
            assert f"score {paragraph['scores'][label]:.3f}" in chip.get_attribute("title")
            left = chip.evaluate("c => c.querySelector('.tick').style.left")
            assert float(left.rstrip("%")) == pytest.approx(thresholds[label] * 100)

    page.check("#raw-toggle")
    assert json.loads(page.text_content("#raw")) == {"responses": watched.answers}
    page.screenshot(path=tmp_path / "ui.png", full_page=True)
    assert (tmp_path / "ui.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert watched.script_errors() == []

    # the API's refusal is a visible message with the server's detail, not a blank page
    assert watched.submit(" \n\n\t ") == "error"
    message = page.inner_text("#message")
    assert page.is_visible("#message") and "HTTP 422" in message and "empty or whitespace only" in message
    assert watched.script_errors(422) == []
    watched.context.close()
    assert time.perf_counter() - started < 30


def test_page_asks_for_the_token_and_sends_it_as_bearer(models, browser) -> None:
    with Server(overrides(models, f"auth.token={TOKEN}")) as server:
        watched = Watched(browser)
        page = watched.page
        page.goto(server.url + "/ui")
        page.wait_for_selector("body[data-ready='1']")
        assert page.is_visible("#token-form") and watched.requests == []  # asked before any /v1/ call

        page.fill("#token", "wrong-token")
        page.click("#token-form button")
        page.wait_for_selector("#token-message:has-text('refused')")
        assert page.is_visible("#token-form")

        page.fill("#token", TOKEN)
        page.click("#token-form button")
        page.wait_for_selector("#models li[data-kind]")
        assert page.is_hidden("#token-form")
        assert watched.submit("Russian missiles struck Kyiv overnight.\n\nSubscribe to Premium.") == "2"
        articles = [r for r in watched.requests if r.url.endswith("/v1/articles")]
        assert len(articles) == 1 and articles[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert [r.headers.get("authorization") for r in watched.requests] == \
            ["Bearer wrong-token", f"Bearer {TOKEN}", f"Bearer {TOKEN}"]
        assert watched.script_errors(401) == []
        watched.context.close()
