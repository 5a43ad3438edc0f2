"""Column names of every artifact, written once so readers and writers cannot drift apart.

Ragged layout: one row per sample, list columns with one entry per token (``INPUT_IDS``,
``LABELS``, ``KINDS``) or per *response* token (``SCORES``, ``KEEP``, ``LOSS_*``). A response
token is a position whose label is not ``IGNORE``; see :mod:`tokenclean.method.align`.
"""

SAMPLE_ID = "sample_id"  # stable string id, unique within a dataset
INPUT_IDS = "input_ids"  # list<int32>, every token of the rendered conversation
LABELS = "labels"  # list<int32>, token id at response positions, IGNORE elsewhere
KINDS = "kinds"  # list<int8>, ground-truth kind per token (synthetic data only), -1 = not response
LOSS_BASE = "loss_base"  # list<float32>, per response token NLL under the base model
LOSS_REF = "loss_ref"  # list<float32>, per response token NLL under the reference model
SCORES = "scores"  # list<float32>, loss_base - loss_ref, per response token
KEEP = "keep"  # list<bool>, per response token: kept for training
ANSWER = "answer"  # string, expected final answer (evaluation of the synthetic task)
PROMPT = "prompt"  # list of chat messages up to the last assistant turn (evaluation)
TRUNCATED = "truncated"  # bool, per sample: the rendered conversation was cut at data.max_seq_len

# One row per optimizer step of a training curve (train/curve.csv). No wall-clock figure: stage outputs must
# be the same on a rerun (tokens/s goes to the log).
CURVE = ("step", "loss", "lr", "grad_norm", "tokens", "kept_tokens")

IGNORE = -100  # label of a position that is never learned (PyTorch's cross-entropy default)

# Ground-truth kinds of response tokens in the synthetic data.
KIND_NAMES = {0: "answer", 1: "boilerplate", 2: "noise"}
ANSWER_KIND, BOILERPLATE_KIND, NOISE_KIND = 0, 1, 2

# Fields of the SFT record formats (tokenclean.data.formats); data.columns maps a user's field names onto them.
RECORD_FIELDS = {"messages": ("messages",), "sharegpt": ("conversations",),
                 "prompt_completion": ("prompt", "completion"), "alpaca": ("instruction", "input", "output")}
MESSAGE_FIELDS = ("role", "content", "from", "value")
MAPPABLE = (*(f for fields in RECORD_FIELDS.values() for f in fields), "id", "meta", *MESSAGE_FIELDS)
ROLES = ("system", "user", "assistant")
