"""model.base as a local directory (the hub path, exercised offline): source.json and loading."""

from tasks import base as base_stage
from tokenclean.io import file_hash, read_json
from tokenclean.model.checkpoint import load_checkpoint
from tokenclean.model.modeling import load_base, load_tokenizer


def test_local_model_directory_as_base(tmp_path, tiny_run, tiny_params, monkeypatch):
    # a model directory written by save_pretrained, as a user would point model.base at
    src = load_base(tiny_run / "out" / "base")
    src.save_pretrained(tmp_path / "models/my-model")  # under models/, the base stage's tracked folder
    load_tokenizer(tiny_run / "out" / "base").save_pretrained(tmp_path / "models/my-model")

    params = tiny_params.model_copy(
        update={"model": tiny_params.model.model_copy(update={"base": "models/my-model"})})
    monkeypatch.chdir(tmp_path)
    base_stage.run(params)
    base = tmp_path / "out" / "base"
    assert read_json(base / "source.json")["name_or_path"] == "models/my-model"
    assert read_json(tmp_path / "out/rounds/base/train/model.json")["sha256"] == file_hash(base)
    model, tok = load_base(base), load_tokenizer(base)
    assert len(tok) == model.get_input_embeddings().num_embeddings
    for a, b in zip(src.state_dict().values(), model.state_dict().values()):
        assert (a == b).all()


def test_lora_checkpoint_on_a_local_base(tiny_run):
    model = load_checkpoint(tiny_run / "out" / "rounds" / "fixed" / "train" / "model", tiny_run / "out" / "base")
    assert hasattr(model, "disable_adapter")
