"""frontwire as Label Studio's ML backend (`frontwire serve --labelstudio`).

Fast part: which controls of a project's labeling config are filled, and the result items (UTF-16 offsets,
the project's own control names and label values). Server part: the protocol routes of a real `frontwire serve`
process on loopback with the tiny registered models. The end-to-end test is in test_label_studio_ml_e2e.py.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest

from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.ls_controls import LabelConfigError, find_controls
from frontwire.labeling.settings import load_labeling_config
from frontwire.modeling import ModelMeta
from frontwire.predictor import Predictor
from frontwire.schema import load_schema
from frontwire.serve.loadtest import start_server, stop_server
from frontwire.serve.ls_tasks import project_id, task_result

SCHEMA = load_schema()
TOPICS, ENTITIES = SCHEMA.topic_names, SCHEMA.entity_names
CONFIG = label_studio_config(SCHEMA, load_labeling_config())
TOKEN = "ls-backend-token-42"
EMOJI = "🇺🇦 Russian missiles struck Kyiv overnight, Zelensky said 💥 as NATO discussed HIMARS."
# a project that renamed everything: controls, the text field, label spelling; one topic with an alias
RENAMED = f"""<View>
  <Text name="paragraph" value="$body"/>
  <Labels name="ents" toName="paragraph">{"".join(f'<Label value="{e.lower()}"/>' for e in ENTITIES[:-1])}</Labels>
  <Choices name="topic" toName="paragraph" choice="multiple">
    {"".join(f'<Choice value="{t.upper()}"/>' for t in TOPICS[1:])}<Choice value="{TOPICS[0]}" alias="T0"/>
    <Choice value="weather"/>
  </Choices>
</View>"""


# ------------------------------------------------------------------------------------------- label configs
def test_generated_config_maps_every_label_to_itself() -> None:
    controls = find_controls(CONFIG, TOPICS, ENTITIES)
    labeling = load_labeling_config()
    assert controls.topics is not None and controls.entities is not None
    assert (controls.topics.name, controls.topics.to_name) == (labeling.topics_control, labeling.text_field)
    assert controls.entities.name == labeling.entities_control
    assert controls.topics.values == {t: t for t in TOPICS} and not controls.topics.single
    assert controls.entities.values == {e: e for e in ENTITIES}
    assert controls.data_keys == (labeling.text_field,)


def test_renamed_controls_values_and_aliases_are_the_projects_own() -> None:
    controls = find_controls(RENAMED, TOPICS, ENTITIES)
    assert controls.topics is not None and controls.entities is not None
    assert (controls.topics.name, controls.topics.to_name, controls.topics.data_key) == ("topic", "paragraph", "body")
    assert controls.topics.values == {TOPICS[0]: "T0", **{t: t.upper() for t in TOPICS[1:]}}
    assert controls.entities.name == "ents"
    assert controls.entities.values == {e: e.lower() for e in ENTITIES[:-1]}  # the last type is not offered


def test_single_choice_and_unusable_configs() -> None:
    single = CONFIG.replace('choice="multiple"', 'choice="single"')
    assert find_controls(single, TOPICS, ENTITIES).topics.single  # type: ignore[union-attr]
    default = CONFIG.replace('choice="multiple" ', "")  # Label Studio's default is single choice
    assert find_controls(default, TOPICS, ENTITIES).topics.single  # type: ignore[union-attr]
    with pytest.raises(LabelConfigError, match="not valid XML"):
        find_controls("<View><Text name='t' value='$text'>", TOPICS, ENTITIES)
    image = (
        '<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="cat"/></Choices></View>'
    )
    with pytest.raises(LabelConfigError, match="nothing frontwire predicts fits"):
        find_controls(image, TOPICS, ENTITIES)
    no_field = (
        '<View><Text name="t" value="plain"/><Choices name="c" toName="t"><Choice value="strike"/></Choices></View>'
    )
    with pytest.raises(LabelConfigError, match=r'has no value="\$field"'):
        find_controls(no_field, TOPICS, ENTITIES)
    entity = "<!DOCTYPE v [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><View>&x;</View>"
    with pytest.raises(LabelConfigError):
        find_controls(entity, TOPICS, ENTITIES)


def test_project_ids_from_ml_calls_and_webhooks() -> None:
    assert project_id("12.1732000000") == 12
    assert project_id({"id": 7, "title": "x"}) == 7
    assert project_id(3) == 3
    assert project_id(None) is None and project_id("abc") is None


# ------------------------------------------------------------------------------------------- result items
def test_result_items_use_utf16_offsets_and_project_values() -> None:
    kyiv, zelensky = EMOJI.index("Kyiv"), EMOJI.index("Zelensky")
    prediction = {
        "labels": [TOPICS[0], TOPICS[1]],
        "scores": {t: 0.1 for t in TOPICS} | {TOPICS[0]: 0.9, TOPICS[1]: 0.7},
        "entities": [
            {"start": kyiv, "end": kyiv + 4, "label": ENTITIES[0], "score": 0.8},
            {"start": zelensky, "end": zelensky + 8, "label": ENTITIES[-1], "score": 0.99},
        ],
    }
    controls = find_controls(RENAMED, TOPICS, ENTITIES)
    items, score = task_result(EMOJI, prediction, controls, dict.fromkeys(TOPICS, 0.5))
    choices = [i for i in items if i["type"] == "choices"]
    spans = [i for i in items if i["type"] == "labels"]
    assert [c["value"]["choices"] for c in choices] == [["T0", TOPICS[1].upper()]]
    assert choices[0]["from_name"] == "topic" and choices[0]["to_name"] == "paragraph"
    assert choices[0]["score"] == 0.7  # the weakest chosen label
    # the last entity type is not in the project: its span is left out, not renamed to something else
    [span] = spans
    utf16 = EMOJI.encode("utf-16-le")
    start, end = span["value"]["start"], span["value"]["end"]
    assert utf16[2 * start : 2 * end].decode("utf-16-le") == "Kyiv" == span["value"]["text"]
    assert start == kyiv + 2  # the flag is two astral characters: two UTF-16 units more than Python counts
    assert span["value"]["labels"] == [ENTITIES[0].lower()] and span["from_name"] == "ents"
    assert score == 0.7


def test_single_choice_keeps_the_best_label_and_empty_results_score_the_no_topic_confidence() -> None:
    controls = find_controls(CONFIG.replace('choice="multiple"', 'choice="single"'), TOPICS, ENTITIES)
    prediction = {
        "labels": [TOPICS[0], TOPICS[1]],
        "scores": {t: 0.1 for t in TOPICS} | {TOPICS[0]: 0.6, TOPICS[1]: 0.8},
    }
    items, _ = task_result("text", prediction, controls, {})
    assert [i["value"]["choices"] for i in items] == [[TOPICS[1]]]
    items, score = task_result(
        "text", {"labels": [], "scores": {t: 0.2 for t in TOPICS}, "entities": []}, controls, dict.fromkeys(TOPICS, 0.5)
    )
    assert items == [] and score == pytest.approx(0.8)


# ------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def backend(tiny_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("ls-backend") / "server.log"
    env = {
        "FRONTWIRE_HOME": str(tiny_models.home),
        "MLFLOW_TRACKING_URI": tiny_models.tracking_uri,
        "FRONTWIRE_API_TOKEN": TOKEN,
        "TOKENIZERS_PARALLELISM": "false",
    }
    process, port = start_server(
        [
            "--labelstudio",
            "--backend",
            "torch",
            "--classifier",
            str(tiny_models.classifier_dir),
            "--ner",
            str(tiny_models.ner_dir),
            "--set",
            "labelstudio.max_tasks=40",
            "--set",
            "labelstudio.chunk_size=7",
            "--set",
            "labelstudio.retrain_after_annotations=2",
        ],
        env=env,
        log_path=log,
    )
    basic = base64.b64encode(f"labelstudio:{TOKEN}".encode()).decode()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Basic {basic}"}
    ) as client:
        yield client, tiny_models
    stop_server(process)


def test_health_setup_and_auth(backend) -> None:
    client, tiny = backend
    health = client.get("/health").json()
    assert health["status"] == "UP"
    version = health["model_version"]
    # model dirs served directly are named by the name they were trained under
    names = [ModelMeta.load(d).name for d in (tiny.classifier_dir, tiny.ner_dir)]
    assert version == "+".join(names)
    assert client.post("/setup", json={"project": "5.1732000000", "schema": RENAMED}).json() == {
        "model_version": version
    }
    refused = client.post("/setup", json={"project": "5.1", "schema": "<View><Image name='i' value='$i'/></View>"})
    assert refused.status_code == 422 and "nothing frontwire predicts fits" in refused.json()["detail"]
    assert client.get("/versions").json() == {"versions": [version]}
    for headers in (
        {"Authorization": "Basic " + base64.b64encode(b"labelstudio:wrong").decode()},
        {"Authorization": "Basic !!!"},
        {"Authorization": f"Token {TOKEN}"},
    ):
        assert client.get("/health", headers=headers).status_code == 401
    assert client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_predict_answers_every_task_in_order_with_the_models_decisions(backend) -> None:
    client, tiny = backend
    texts = [
        EMOJI,
        "EU ministers agreed new sanctions on Russian LNG.",
        "Subscribe to Premium for €1.",
        "Ukrainian troops advanced near Robotyne, the general staff said.",
    ] * 4
    tasks = [{"id": 100 + i, "data": {"body": text}} for i, text in enumerate(texts)]
    tasks.insert(3, {"id": 99, "data": {"other": "no text"}})
    tasks.insert(5, {"id": 98, "data": {"body": "   "}})
    answer = client.post("/predict", json={"tasks": tasks, "project": "5.1732000000", "label_config": RENAMED})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["results"]) == len(tasks)
    assert [(e["task"], e["index"]) for e in body["errors"]] == [(99, 3), (98, 5)]
    controls = find_controls(RENAMED, TOPICS, ENTITIES)
    predictor = Predictor(tiny.classifier_dir, tiny.ner_dir, device="cpu")
    expected = predictor.predict(texts)
    good = [r for i, r in enumerate(body["results"]) if i not in (3, 5)]
    for text, want, got in zip(texts, expected, good, strict=True):
        assert got["model_version"] == body["model_version"]
        items, score = task_result(text, want, controls, predictor.topics.thresholds)  # type: ignore[union-attr]
        strip = [{k: v for k, v in item.items() if k != "id"} for item in items]
        assert [{k: v for k, v in item.items() if k != "id"} for item in got["result"]] == strip
        assert got["score"] == score
    assert body["results"][3]["result"] == [] and body["results"][5]["result"] == []
    assert any(item["type"] == "labels" for r in good for item in r["result"]), "no span was checked"


def test_predict_limits_and_bad_input(backend) -> None:
    client, _ = backend
    too_many = {"tasks": [{"id": i, "data": {"text": "x"}} for i in range(41)], "label_config": CONFIG}
    assert client.post("/predict", json=too_many).status_code == 413
    assert client.post("/predict", json={"tasks": [{"id": 1, "data": {"text": "Kyiv"}}]}).status_code == 422
    assert (
        client.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    )
    bad = client.post("/predict", json={"tasks": [], "label_config": "<View"})
    assert bad.status_code == 422 and "not valid XML" in bad.json()["detail"]
    assert client.get("/health").json()["status"] == "UP"


def test_webhooks_return_at_once_and_count_annotations(backend) -> None:
    client, _ = backend
    assert (
        client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 5}}).json()["status"] == "ignored"
    )
    counted = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 77}})
    assert counted.json() == {"status": "counted", "events": 1, "retrain_at": 2}
    # project 77 never called /setup and the server has no labelstudio.url: a clear refusal, not a hang
    refused = client.post("/webhook", json={"action": "ANNOTATION_UPDATED", "project": {"id": 77}})
    assert refused.status_code == 409 and "never called /setup" in refused.json()["detail"]
    # a project Label Studio set up points at a dead Label Studio: the job is queued at once and fails in the
    # background with the retrain's own error, while predictions keep being answered
    client.post(
        "/setup", json={"project": "6.1", "schema": CONFIG, "hostname": "http://127.0.0.1:9", "access_token": "t"}
    )
    started = time.perf_counter()
    queued = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 6}})
    assert time.perf_counter() - started < 2.0
    assert queued.status_code == 201 and queued.json()["status"] == "queued"
    job_id = queued.json()["job"]
    # more presses while one is pending join the pending job instead of piling up retrains
    second = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 6}}).json()
    third = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 6}}).json()
    assert third == {"status": "already queued", "job": second["job"]}
    queued = [j for j in client.get("/training/jobs").json()["jobs"] if j["state"] == "queued"]
    assert [j["id"] for j in queued] == [second["job"]]  # the first job, if still waiting, or the one behind it
    assert (
        client.post(
            "/predict", json={"tasks": [{"id": 1, "data": {"text": "Kyiv"}}], "label_config": CONFIG}
        ).status_code
        == 200
    )
    deadline = time.monotonic() + 120
    while (status := client.post("/job_status", json={"job": job_id}).json())["job_status"] in ("queued", "started"):
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status["job_status"] == "failed"
    assert "retrain exited with" in status["error"] and Path(status["log_file"]).is_file()
    assert any(j["id"] == job_id for j in client.get("/training/jobs").json()["jobs"])
    assert client.post("/job_status", json={"job": "nope"}).status_code == 410
