"""tools/nlu_report.py: the out-of-scope and order-id numbers, candidate pipelines, and the
rule that held-out messages are never training data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools.nlu_report import (
    HELDOUT_DIR,
    TRAINING_DIR,
    CandidateResult,
    Prediction,
    ReportError,
    Scores,
    Timing,
    example_texts,
    fallback_threshold,
    leaked_examples,
    missed_targets,
    nlu_files_texts,
    order_id_extraction,
    out_of_scope_business,
    predictions,
    render_report,
    results_from_json,
    results_to_json,
    scores,
    with_dense,
    without_dense,
)


def test_an_out_of_scope_message_counts_only_when_it_reaches_a_confident_business_intent() -> None:
    rows = [
        Prediction("will it rain", "out_of_scope", "order_status", 0.91),  # starts a flow
        Prediction("my car is broken", "out_of_scope", "troubleshoot", 0.40),  # falls back
        Prediction("lol", "out_of_scope", "affirm", 0.95),  # small talk, no flow
        Prediction("tell me a joke", "out_of_scope", "out_of_scope", 0.99),
        Prediction("bot?", "out_of_scope", "faq/delivery_times", 0.80),  # retrieval is business
        Prediction("where is my order", "order_status", "order_status", 0.99),  # not oos
    ]
    total, business = out_of_scope_business(rows, threshold=0.6)
    assert total == 5
    assert [row.text for row in business] == ["will it rain", "bot?"]


def test_an_order_id_counts_as_extracted_only_with_its_exact_value() -> None:
    rows = [
        {  # found
            "text": "cancel O-5001",
            "entities": [{"entity": "order_id", "value": "O-5001"}],
            "predicted_entities": [{"entity": "order_id", "value": "O-5001"}],
        },
        {  # found, spelt as in the training data
            "text": "has o5006 shipped",
            "entities": [{"entity": "order_id", "value": "o5006"}],
            "predicted_entities": [{"entity": "order_id", "value": "O5006"}],
        },
        {  # found a part of it only
            "text": "where is #8812",
            "entities": [{"entity": "order_id", "value": "#8812"}],
            "predicted_entities": [{"entity": "order_id", "value": "8812"}],
        },
        {  # tagged as something else
            "text": "order 5004 status",
            "entities": [{"entity": "order_id", "value": "5004"}],
            "predicted_entities": [{"entity": "quantity", "value": "5004"}],
        },
        {  # no order id in the message: not counted
            "text": "2 mugs",
            "entities": [{"entity": "quantity", "value": "2"}],
            "predicted_entities": [],
        },
        {  # the same message again (in Rasa's successes and errors): counted once
            "text": "cancel O-5001",
            "entities": [{"entity": "order_id", "value": "O-5001"}],
            "predicted_entities": [{"entity": "order_id", "value": "O-5001"}],
        },
    ]
    total, missed = order_id_extraction(rows)
    assert total == 4
    assert missed == ["where is #8812", "order 5004 status"]


def test_the_fallback_threshold_comes_from_the_config() -> None:
    config = {
        "pipeline": [{"name": "DIETClassifier"}, {"name": "FallbackClassifier", "threshold": 0.7}]
    }
    assert fallback_threshold(config) == 0.7
    rasa_default = 0.3
    assert fallback_threshold({"pipeline": [{"name": "FallbackClassifier"}]}) == rasa_default
    assert fallback_threshold({"pipeline": [{"name": "DIETClassifier"}]}) == 0.0


def test_the_dense_candidate_adds_minilm_before_diet_and_the_sparse_one_removes_it() -> None:
    pipeline = [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "DIETClassifier", "epochs": 40},
        {"name": "ResponseSelector", "retrieval_intent": "faq"},
    ]
    dense = with_dense(pipeline, "/weights")
    assert [c["name"] for c in dense] == [
        "WhitespaceTokenizer",
        "CountVectorsFeaturizer",
        "LanguageModelFeaturizer",
        "DIETClassifier",
        "ResponseSelector",
    ]
    assert dense[2] == {
        "name": "LanguageModelFeaturizer",
        "model_name": "bert",
        "model_weights": "/weights",
    }
    assert without_dense(dense) == pipeline
    assert with_dense(dense, "/weights") == dense  # never twice


def test_scores_read_rasa_report_files(tmp_path: Path) -> None:
    (tmp_path / "intent_report.json").write_text(
        json.dumps({"accuracy": 0.75, "macro avg": {"f1-score": 0.7}})
    )
    success = {
        "text": "hi",
        "intent": "greet",
        "intent_prediction": {"name": "greet", "confidence": 0.9},
    }
    errors = [
        {"text": "tell me a joke", "intent": "out_of_scope",
         "intent_prediction": {"name": "complaint", "confidence": 0.8}},
        {"text": "weather?", "intent": "out_of_scope",
         "intent_prediction": {"name": "order_status", "confidence": 0.5}},
    ]  # fmt: skip
    (tmp_path / "intent_successes.json").write_text(json.dumps([success]))
    (tmp_path / "intent_errors.json").write_text(json.dumps(errors))
    (tmp_path / "DIETClassifier_successes.json").write_text(
        json.dumps(
            [
                {
                    "text": "cancel o5001",
                    "entities": [{"entity": "order_id", "value": "o5001"}],
                    "predicted_entities": [{"entity": "order_id", "value": "o5001"}],
                }
            ]
        )
    )
    result = scores(tmp_path, threshold=0.6)
    assert (result.accuracy, result.macro_f1) == (0.75, 0.7)
    assert [p.text for p in result.oos_business] == ["tell me a joke"]
    assert result.oos_business_rate == 0.5
    assert (result.order_id_total, result.order_id_missed, result.order_id_rate) == (1, [], 1.0)
    assert missed_targets(result) == [
        "accuracy 75.0% < 92%",
        "out of scope -> business 50.0% > 10%",
    ]


def test_a_report_without_predictions_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="--successes"):
        predictions(tmp_path)
    with pytest.raises(ReportError, match=r"intent_report\.json: missing"):
        scores(tmp_path, threshold=0.6)
    (tmp_path / "intent_report.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"intent_report\.json: not valid JSON"):
        scores(tmp_path, threshold=0.6)


def test_examples_lose_their_entity_annotations() -> None:
    document = yaml.safe_load(
        """
nlu:
- intent: cancel_order
  examples: |
    - cancel [O-5001](order_id) pls
    - cancel [two]{"entity": "quantity", "value": "2"} [mugs](product)
- regex: order_id
  examples: |
    - \\bO-\\d+\\b
"""
    )
    assert list(example_texts(document)) == [
        ("cancel_order", "cancel O-5001 pls"),
        ("cancel_order", "cancel two mugs"),
    ]


def test_leaks_are_found_whatever_the_case_and_spacing() -> None:
    assert leaked_examples(["Where is my order", "hi"], ["where  is my ORDER", "hello"]) == [
        "where  is my ORDER"
    ]


def test_no_held_out_message_is_training_data() -> None:
    heldout = nlu_files_texts(HELDOUT_DIR)
    assert len(heldout) > 300
    assert leaked_examples(nlu_files_texts(TRAINING_DIR), heldout) == []


def test_the_report_marks_the_adopted_pipeline_and_every_missed_target() -> None:
    good = Scores(0.95, 0.94, 40, [], 40, [])
    bad = Scores(
        0.90, 0.88, 40, [Prediction(f"oos {i}", "out_of_scope", "refund", 0.9) for i in range(5)],
        40, ["cancel 8812", "where is #8812", "o5001?"],
    )  # fmt: skip
    results = [
        CandidateResult("sparse", "DIET on sparse features", Timing(120, 200, 1.5), good, 8, 12),
        CandidateResult("dense", "DIET with MiniLM", Timing(400, 700, 1.5), bad, 60, 90),
    ]
    report = render_report(results, "sparse", "Why sparse won.", "2026-11-26 07:36 UTC")
    assert "Measured 2026-11-26 07:36 UTC" in report
    sparse_row, dense_row = [line for line in report.splitlines() if line.startswith("| ")][1:3]
    assert "**sparse** (adopted)" in sparse_row and "✗" not in sparse_row
    assert "120 s (200 s CPU, load 1.5)" in sparse_row
    assert dense_row.count("✗") == 4  # training time, accuracy, out of scope, order_id
    assert "5/40 = 12.5%" in dense_row and "37/40 = 92.5%" in dense_row
    assert "- out of scope → `refund` (0.90): oos 0" in report
    assert "- `order_id` not extracted: where is #8812" in report
    assert report.endswith("Why sparse won.\n")


def test_measurements_survive_the_json_round_trip() -> None:
    oos = [Prediction("will it rain", "out_of_scope", "order_status", 0.8)]
    result = CandidateResult(
        "sparse",
        "DIET",
        Timing(100.5, 150.25, 3.5),
        Scores(0.9, 0.8, 40, oos, 42, ["o5001?"]),
        9,
        30,
    )
    stored = json.loads(json.dumps(results_to_json([result], "sparse", "2026-11-26 07:36 UTC")))
    assert results_from_json(stored) == ([result], "sparse", "2026-11-26 07:36 UTC")
