"""Bundle format version 1 (DESIGN.md §3): file names and manifest schema, in one place."""

from __future__ import annotations

FORMAT_NAME = "brainview-bundle"
FORMAT_VERSION = 1
KNOWN_VERSIONS = (1,)

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

REQUIRED_FILES = (
    MANIFEST, BRAIN_MODEL, FMRI, STIMULI, CAPTIONS, TRIALS, IMAGE_EMBEDDINGS,
    TEXT_EMBEDDINGS, TEXT_INDEX, MESH, VERTEX_VOXEL, ROIS,
)

STAGES = ("stage1", "stage2")
HEMISPHERES = ("lh", "rh")
MESH_KEYS = ("inflated", "pial", "faces", "sulc")

#: manifest key -> (python type(s), description); all required.
MANIFEST_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "format": (str, "the string 'brainview-bundle'"),
    "version": (int, "the format version"),
    "name": (str, "a human-readable name"),
    "dataset": (str, "the dataset name"),
    "subject": (str, "the subject id"),
    "n_voxels": (int, "number of voxels"),
    "n_query": (int, "number of query tokens"),
    "query_dim": (int, "query token width"),
    "text_dim": (int, "text embedding width"),
    "stages": (list, "list of stages in the brain model"),
    "vlm": (dict, "vision-language model references"),
    "synthetic": (dict, "synthetic pattern settings"),
    "provenance": (dict, "how the bundle was made"),
    "metrics": (dict, "metrics recorded at export"),
}

QUESTIONS = "test/questions.json"  # optional: the held-out question-answer set of the test trials

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
