"""Prompts reach the language model: a tiny BLIP-2 trained so that its answer depends on the question,
asked through the adapter's real ``generate`` path (several questions of different lengths in one batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainview.decoding.blip2 import Blip2Adapter
from brainview.decoding.decoder import Decoder
from brainview.decoding.questions import Turn, question_prompt
from brainview.decoding.tiny_vlm import build_tiny_blip2, save_tiny_blip2, train_tokenizer
from training.demo_world.vlm import _lm_batch

N_QUERY = 4
QUESTIONS = {"what colour is it?": "red", "where was this picture taken, do you think?": "beach",
             "how many are there?": "two"}


@pytest.fixture(scope="module")
def answering_adapter(tmp_path_factory):
    """A captioner whose only skill is answering three questions, whatever the query tokens."""
    corpus = [f"{question_prompt(q)} {a}" for q, a in QUESTIONS.items()] + ["a red ball on a beach"]
    tokenizer = train_tokenizer(corpus, vocab_size=300)
    captioner, retrieval = build_tiny_blip2(tokenizer, seed=0, n_query=N_QUERY, query_dim=16, lm_hidden=32,
                                            lm_layers=1, qformer_layers=1, text_dim=8)
    prompts = [question_prompt(q) for q in QUESTIONS]
    targets = list(QUESTIONS.values())
    optimizer = torch.optim.Adam(list(captioner.language_model.parameters())
                                 + list(captioner.language_projection.parameters()), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    captioner.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only wait on each other on a shared machine
    for _ in range(120):
        tokens = torch.randn((len(prompts), N_QUERY, 16), generator=generator)
        embeds, attention, labels = _lm_batch(captioner, tokenizer, tokens, targets, prompts)
        loss = captioner.language_model(inputs_embeds=embeds, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    captioner.eval()
    folders = save_tiny_blip2(tmp_path_factory.mktemp("answering"), tokenizer, captioner=captioner,
                              retrieval=retrieval)
    return Blip2Adapter.load(folders["captioner"], None, device="cpu")


@pytest.fixture(scope="module")
def tokens():
    return np.random.default_rng(1).standard_normal((6, N_QUERY, 16)).astype(np.float32)


def test_the_answer_depends_on_the_prompt(answering_adapter, tokens):
    questions = list(QUESTIONS)
    for question, answer in QUESTIONS.items():
        assert answering_adapter.caption(tokens[:2], prompt=question_prompt(question), max_new_tokens=4) == [answer] * 2


def test_one_prompt_per_row_in_a_batch_is_what_each_row_gets_alone(answering_adapter, tokens):
    """Prompts of different lengths in one batch are left-padded and masked: the same answers as alone."""
    questions = [list(QUESTIONS)[i % 3] for i in range(len(tokens))]
    prompts = [question_prompt(q) for q in questions]
    assert len({answering_adapter.count_tokens(p) for p in prompts}) == 3
    batched = answering_adapter.caption(tokens, prompt=prompts, max_new_tokens=4)
    assert batched == [QUESTIONS[q] for q in questions]
    alone = [answering_adapter.caption(tokens[[i]], prompt=p, max_new_tokens=4)[0] for i, p in enumerate(prompts)]
    assert batched == alone
    beams = answering_adapter.caption(tokens, prompt=prompts, max_new_tokens=4, num_beams=3)
    assert beams == batched


def test_max_new_tokens_is_per_call(answering_adapter, tokens):
    long = answering_adapter.caption(tokens[:1], prompt="", max_new_tokens=12)[0]
    short = answering_adapter.caption(tokens[:1], prompt="", max_new_tokens=1)[0]
    assert answering_adapter.count_tokens(short) <= 2 and answering_adapter.count_tokens(long) >= answering_adapter.count_tokens(short)


def test_a_prompt_list_must_match_the_tokens(answering_adapter, tokens):
    from brainview.errors import UserError

    with pytest.raises(UserError, match="2 prompts for 6 sets of query tokens"):
        answering_adapter.caption(tokens, prompt=["a", "b"])


def test_decoder_answers_with_the_bundles_prompt_and_a_capped_dialogue(answering_adapter, app_bundle, tokens):
    decoder = Decoder(app_bundle, answering_adapter)
    assert app_bundle.vlm["question_prompt"] == "Question: {q} Answer:" and app_bundle.vlm["dialogue_turns"] == 3
    questions = [list(QUESTIONS)[i % 3] for i in range(len(tokens))]
    assert decoder.answers(tokens, questions) == [QUESTIONS[q] for q in questions]
    short = [Turn(f"q{i}?", "a") for i in range(8)]
    prompt = decoder.question_prompt("what colour is it?", short)
    assert prompt.count("Question:") == 4 and "q7?" in prompt and "q4?" not in prompt  # 3 turns, then the question
    long = [Turn(f"earlier question number {i} about the scene?", f"answer {i}") for i in range(8)]
    prompt = decoder.question_prompt("what colour is it?", long)
    assert 1 < prompt.count("Question:") < 4 and "number 7" in prompt  # the newest turns that fit the budget
    assert answering_adapter.count_tokens(prompt) <= answering_adapter.max_prompt_tokens
