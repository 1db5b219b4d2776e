"""Bundle format (DESIGN.md §3): file names and manifest schema, in one place.

Version 2 adds one optional part to version 1: a prediction cache (``predictions/STAGE.npy``, every
test trial's predicted tokens, written at export) with a ``"predictions"`` manifest entry naming
the stages, the stored dtype and a fingerprint of the weights and fMRI they came from. A bundle
without a cache is written as version 1, so it opens in brainview builds that predate the cache.
"""

from __future__ import annotations

FORMAT_NAME = "brainview-bundle"
FORMAT_VERSION = 2
KNOWN_VERSIONS = (1, 2)
#: the first version that may hold a prediction cache; a bundle without one is written as version 1
PREDICTIONS_VERSION = 2

MANIFEST = "manifest.json"
BRAIN_MODEL = "brain_model.safetensors"
FMRI = "test/fmri.npy"
STIMULI = "test/stimuli.npy"
CAPTIONS = "test/captions.json"
TRIALS = "test/trials.json"
IMAGE_EMBEDDINGS = "embeddings/image.npy"
TEXT_EMBEDDINGS = "embeddings/text.npy"
TEXT_INDEX = "embeddings/text_index.json"
MESH = "cortex/mesh.npz"
VERTEX_VOXEL = "cortex/vertex_voxel.npz"
ROIS = "cortex/rois.json"
VLM_DIR = "vlm"
PREDICTIONS_DIR = "predictions"


def prediction_file(stage: str) -> str:
    """The cached predicted tokens of ``stage``: (n_trials, n_query, query_dim), float16 or float32."""
    return f"{PREDICTIONS_DIR}/{stage}.npy"

REQUIRED_FILES = (
    MANIFEST, BRAIN_MODEL, FMRI, STIMULI, CAPTIONS, TRIALS, IMAGE_EMBEDDINGS,
    TEXT_EMBEDDINGS, TEXT_INDEX, MESH, VERTEX_VOXEL, ROIS,
)

STAGES = ("stage1", "stage2")
HEMISPHERES = ("lh", "rh")
MESH_KEYS = ("inflated", "pial", "faces", "sulc")
#: optional flatmap, for both hemispheres or neither: coordinates (V, 3) and the faces it draws (F', 3)
MESH_FLAT_KEYS = ("flat", "flat_faces")

#: optional per-vertex arrays of ``cortex/mesh.npz`` (``lh_<key>``, ``rh_<key>``), checked and kept when
#: present: key -> columns (None: one value per vertex); e.g. ``"flat": 3`` for flatmap coordinates
MESH_OPTIONAL: dict[str, int | None] = {}
#: optional JSON files, parsed (bounded) into ``Bundle.extra`` when present: name -> most bytes per trial
OPTIONAL_JSON: dict[str, int] = {}

# Bounds a bundle's declared sizes must respect, so no header can make the reader allocate wildly.
MAX_VERTICES = 2_000_000  # per hemisphere (native NSD surfaces have about 227,000)
MAX_TRIALS = 1_000_000
MAX_TEXTS_PER_TRIAL = 1000
MAX_VOXELS_PER_VERTEX = 64  # vertex_voxel nonzeros per vertex, on average
MAX_STIMULUS_SIDE = 8192
MAX_MANIFEST_BYTES = 2**20


class Field:
    """One manifest value: a JSON kind and, for numbers, a range; ``choices`` lists the allowed values."""

    def __init__(self, kind: str, what: str, *, low=None, high=None, choices=None, max_length: int = 500,
                 required: bool = True, fields: dict[str, "Field"] | None = None, pattern: str | None = None,
                 since: int = 1):
        self.kind, self.what, self.low, self.high = kind, what, low, high
        self.choices, self.max_length, self.required, self.fields = choices, max_length, required, fields
        self.pattern = pattern  # a string must match it in full
        self.since = since  # the format version that introduced the key: older manifests keep it unread


MODEL_REFERENCE = ("a folder inside the bundle (e.g. \"vlm/captioner\") or a Hugging Face model id "
                   "in the local cache, or null")

#: ``vlm``: the language models and how they generate (DESIGN.md §3); unknown keys are refused
VLM_FIELDS = {
    "captioner": Field("reference", f"the captioner: {MODEL_REFERENCE}", required=False),
    "retrieval": Field("reference", f"the retrieval model: {MODEL_REFERENCE}", required=False),
    "prompt": Field("str", "the text prompt after the image tokens", max_length=2000, required=False),
    "max_new_tokens": Field("int", "the most tokens a caption may have", low=1, high=512, required=False),
    "num_beams": Field("int", "beams of the beam search (1: greedy)", low=1, high=16, required=False),
    "question_prompt": Field("str", 'the question prompt, "{q}" standing for the question', max_length=2000,
                             required=False),
    "dialogue_turns": Field("int", "earlier turns kept in front of a question", low=0, high=32, required=False),
    "max_answer_tokens": Field("int", "the most tokens an answer may have", low=1, high=512, required=False),
}
SYNTHETIC_FIELDS = {
    "scale": Field("number", "the synthetic pattern's scale", low=0, high=1e6, required=False),
}

#: ``predictions`` (version 2, optional): what the prediction cache holds and what it was computed from
FINGERPRINT = r"[0-9a-f]{64}"
PREDICTION_FIELDS = {
    "stages": Field("stages", "the stages whose predicted tokens are cached"),
    "dtype": Field("str", "the cached tokens' dtype", choices=("float16", "float32")),
    "weights": Field("str", "fingerprint (sha256) of the brain model the tokens were predicted with",
                     pattern=FINGERPRINT),
    "fmri": Field("str", "fingerprint (sha256) of test/fmri.npy", pattern=FINGERPRINT),
}

#: every manifest key; keys not listed are kept but not used
MANIFEST_FIELDS: dict[str, Field] = {
    "format": Field("str", "the string 'brainview-bundle'", choices=("brainview-bundle",)),
    "version": Field("int", "the format version", choices=KNOWN_VERSIONS),
    "name": Field("str", "a human-readable name", max_length=1000),
    "dataset": Field("str", "the dataset name"),
    "subject": Field("str", "the subject id"),
    "n_voxels": Field("int", "number of voxels", low=1, high=10_000_000),
    "n_query": Field("int", "number of query tokens", low=1, high=4096),
    "query_dim": Field("int", "query token width", low=1, high=65536),
    "text_dim": Field("int", "text embedding width", low=1, high=65536),
    "stages": Field("stages", "the distinct stages of the brain model, out of stage1 and stage2"),
    "vlm": Field("object", "vision-language model references", fields=VLM_FIELDS),
    "synthetic": Field("object", "synthetic pattern settings", fields=SYNTHETIC_FIELDS),
    "provenance": Field("object", "how the bundle was made"),
    "metrics": Field("object", "metrics recorded at export"),
    "predictions": Field("object", "the prediction cache (format version 2)", fields=PREDICTION_FIELDS,
                         required=False, since=PREDICTIONS_VERSION),
}

QUESTIONS = "test/questions.json"  # optional: the held-out question-answer set of the test trials
#: optional, together: every repeat of each test image, float16/float32 (n_trials, max_repeats, n_voxels), and
#: how many of a trial's slots hold a repeat (n_trials,) integers in 1..max_repeats; slots past the count are
#: ignored (any value). ``test/fmri.npy`` stays what every figure decodes (the repeats' mean, for NSD and the demo)
FMRI_REPEATS = "test/fmri_repeats.npy"
FMRI_REPEAT_COUNTS = "test/fmri_repeat_counts.npy"
MAX_REPEATS = 64
MAX_QUESTION_BYTES = 64 * 1024  # per trial, bounding the QA set's size before it is parsed
MAX_QUESTION_CHARS = 1000  # per question (and answer): far above VQA's, far below what stalls a tokenizer

#: ``question_prompt``: BLIP-2's VQA prompt, ``{q}`` = the question; ``dialogue_turns``: earlier
#: turns kept in front of a question; ``max_answer_tokens``: the answer's generation limit.
VLM_DEFAULTS = {"captioner": None, "retrieval": None, "prompt": "", "max_new_tokens": 30, "num_beams": 1,
                "question_prompt": "Question: {q} Answer:", "dialogue_turns": 3, "max_answer_tokens": 10}
SYNTHETIC_DEFAULTS = {"scale": 11.0}


def weight_keys(stage: str) -> tuple[str, ...]:
    """Tensor names a stage must have in ``brain_model.safetensors``."""
    keys = (f"{stage}.weight", f"{stage}.bias")
    if stage == "stage2":
        keys += ("stage2.projection.weight", "stage2.projection.bias")
    return keys
