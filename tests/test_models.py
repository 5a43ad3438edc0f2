"""model.base as a local directory (the hub path, exercised offline): source.json and loading."""

from tasks import base as base_stage
from tokenclean.io import read_json
from tokenclean.model.checkpoint import load_checkpoint
from tokenclean.model.modeling import load_base, load_tokenizer


def test_local_model_directory_as_base(tmp_path, tiny_run, tiny_params):
    # a model directory written by save_pretrained, as a user would point model.base at
    src = load_base(tiny_run / "out" / "base")
    src.save_pretrained(tmp_path / "my-model")
    load_tokenizer(tiny_run / "out" / "base").save_pretrained(tmp_path / "my-model")

    params = tiny_params.model_copy(
        update={"model": tiny_params.model.model_copy(update={"base": str(tmp_path / "my-model")})})
    base_stage.run(params, out=tmp_path / "base")
    assert read_json(tmp_path / "base" / "source.json")["name_or_path"] == str(tmp_path / "my-model")
    model, tok = load_base(tmp_path / "base"), load_tokenizer(tmp_path / "base")
    assert len(tok) == model.get_input_embeddings().num_embeddings
    for a, b in zip(src.state_dict().values(), model.state_dict().values()):
        assert (a == b).all()


def test_lora_checkpoint_on_a_local_base(tiny_run):
    model = load_checkpoint(tiny_run / "out" / "rounds" / "fixed" / "train" / "model", tiny_run / "out" / "base")
    assert hasattr(model, "disable_adapter")
