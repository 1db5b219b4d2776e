"""Ask the brain in language: phrase search, zero-shot labels and concept maps, in one place.

The three questions of BrainCLIP and Neuro-Vision-to-Language, all asked in the stage-2
brain↔text space (DESIGN.md §4): a text goes through the retrieval model's Q-Former text path
and ``text_projection`` (``Blip2Adapter.text_embeddings``); a brain pattern goes through the
stage-2 weights and projection (``BrainModel.project_text``); their score is the maximum over
query tokens of the cosine (``retrieval.text_scores``), the score ``text_given_brain`` ranks by.
Every answer also comes from the trials' *true* image tokens through the same projection: what
a perfect decoder would give, the upper bound the brain's answer is read against.

* :meth:`LanguageProbe.search` ranks the test trials for a phrase.
* :meth:`LanguageProbe.classify` decodes each trial into one of a list of labels, zero-shot
  (CLIP's prompt template and prompt ensembling), with accuracy against a truth field.
* :meth:`LanguageProbe.concept_map` says which voxels drive a phrase's score (or, against
  alternatives, its zero-shot probability): per trial the gradient × input (closed form for the
  linear model), across trials the Haufe et al. (2014) activation pattern, the covariance of
  each voxel with the score; :meth:`LanguageProbe.lesion` checks a map by silencing its top
  voxels against as many random ones.

Wherever a phrase is typed it may be a prompt ensemble (``NAME=P1;P2``, :mod:`.phrases`), and
every answer says which of its words the text encoder has likely never seen (:mod:`.vocabulary`).
The parts: :mod:`.phrases` (queries, labels, truth fields), :mod:`.search`, :mod:`.zero_shot`,
:mod:`.concept_maps`, :mod:`.vocabulary`; :mod:`.probe` holds the probe that ties them to a bundle; this module re-exports their public names.

The CLI (``brainview search|classify|localize``), the session and the GUI all call this package;
it imports neither Qt nor torch (the text encoder is handed in as a function).
"""

from brainview.decoding.language.concept_maps import (DEFAULT_LESION, MATCHING_SHARE, RANDOM_DRAWS, ConceptMap,
                                                      LesionCheck, silence_many, top_count)
from brainview.decoding.language.phrases import (DEFAULT_TEMPLATE, Label, clean_phrase, field_labels, field_value,
                                                 parse_labels, parse_query, refining_fields, truth_fields,
                                                 truth_indices)
from brainview.decoding.language.probe import LanguageProbe, load_text_encoder, unavailable_reason
from brainview.decoding.language.search import SearchResult
from brainview.decoding.language.vocabulary import Vocabulary
from brainview.decoding.language.zero_shot import TOP5, Accuracy, ZeroShot, wilson_interval, zero_shot_accuracy

__all__ = ["DEFAULT_LESION", "DEFAULT_TEMPLATE", "MATCHING_SHARE", "RANDOM_DRAWS", "TOP5", "Accuracy", "ConceptMap",
           "Label", "LanguageProbe", "LesionCheck", "SearchResult", "Vocabulary", "ZeroShot", "clean_phrase",
           "field_labels", "field_value", "refining_fields", "load_text_encoder", "parse_labels", "parse_query", "silence_many", "top_count",
           "truth_fields", "truth_indices", "unavailable_reason", "wilson_interval", "zero_shot_accuracy"]
