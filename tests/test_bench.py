"""The speed benchmark at its tiny size: every measurement runs, and project and recipe compute the same NLL."""

import json

import numpy as np
import pytest

from bench import pool, profile, recipe, speed
from bench.workload import forward_flops, keep_share, sft_samples
from tokenclean.columns import IGNORE


def test_tiny_benchmark_measures_every_method(tmp_path, capsys):
    small = ["--score-samples", "24", "--train-steps", "2", "--train-tokens", "1024", "--select-tokens", "50000"]
    results = speed.main(["--shape", "tiny", "--variants", "torch,torch+pack", "--full", "tiny", *small,
                          "--json", str(tmp_path / "speed.json")])
    methods = {(r["work"], r.get("method")) for r in results}
    assert methods == {("score", "recipe"), ("score", "project[torch]"), ("score", "project[torch+pack]"),
                       ("train", "recipe"), ("train", "project[torch]"), ("train", "project[torch+pack]"),
                       ("train", "project[torch+pack,full,checkpointed]"), ("select", None)}
    packed = next(r for r in results if r["work"] == "score" and r["method"] == "project[torch+pack]")
    assert packed["max_abs_nll_diff_vs_recipe"] < 1e-4 and packed["max_abs_nll_diff_vs_torch"] < 1e-4
    for r in results:
        if r["work"] != "select":
            assert r["tok_per_s"] > 0 and 0 < r["matmul_share"]
    project = next(r for r in results if r["work"] == "score" and r["method"] == "project[torch]")
    assert project["max_abs_nll_diff_vs_recipe"] < 1e-4  # same losses at the same positions, fp32 on CPU
    sel = results[-1]
    assert sel["kept"] == round(0.6 * sel["tokens"]) and sel["bytes_per_score"] <= 4.0
    assert json.loads((tmp_path / "speed.json").read_text())["results"][0]["work"] == "score"
    assert "| tiny | train | project[torch] |" in capsys.readouterr().out


def test_a_failing_variant_is_a_row_with_its_error():
    def broken():
        raise RuntimeError("no kernel for this")

    results = []
    assert speed.attempt(results, "tiny", "score", "liger+compile", broken) is None
    assert results == [{"work": "score", "method": "project[liger+compile]",
                        "error": "RuntimeError: no kernel for this", "shape": "tiny"}]
    assert speed.attempt(results, "tiny", "train", "torch", lambda: {"ok": 1}) == {"ok": 1} and len(results) == 1
    assert "liger+compile" not in speed.table(results)  # the table leaves it out; the JSON keeps it


@pytest.mark.parametrize("name, kind", [
    ("nvjet_tst_192x192_64x4_2x1_v_bz_coopB_TNN", "matmul"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64", "matmul"),
    ("void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128>>", "attention"),
    ("_rms_norm_forward_kernel", "norm/activation/rope (fused)"),
    ("triton_poi_fused_add_mul_silu_0", "norm/activation/rope (fused)"),
    ("liger_cross_entropy_kernel", "cross-entropy"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>>",
     "element-wise (PyTorch)"),
    ("Memcpy DtoH (Device -> Pinned)", "memcpy/memset"),
    ("some_new_kernel", "other"),
])
def test_profile_sorts_kernels_by_kind(name, kind):
    assert profile.kind(name) == kind


def test_profile_runs_scoring_and_training_on_cpu(tmp_path):
    rows = profile.main(["--shape", "tiny", "--variants", "torch+pack", "--score-samples", "16", "--train-steps", "1",
                         "--json", str(tmp_path / "p.json")])
    assert [(r["work"], r["variant"]) for r in rows] == [("score", "torch+pack"), ("train", "torch+pack")]
    assert all(r["wall_seconds"] > 0 and r["matmul_share"] > 0 for r in rows)
    assert json.loads((tmp_path / "p.json").read_text())["environment"]["shape"] == "tiny"


def test_recipe_selection_counts_response_tokens_only():
    samples = sft_samples("tiny", 12)
    losses = [[1.0] * recipe.ROW for _ in samples.ids]
    assert recipe.select(losses, losses, samples, 0.5) == int(samples.labelled() * 0.5)


def test_samples_and_flops_are_what_the_table_assumes():
    samples = sft_samples("1b", 500)
    assert 32 <= samples.lengths.min() and samples.lengths.max() <= 2048 and 250 < np.median(samples.lengths) < 450
    assert all(y[0] == IGNORE and (y != IGNORE).any() for y in samples.labels)
    kept = keep_share(samples, 0.6)
    assert abs(kept.labelled() / samples.labelled() - 0.6) < 0.02
    # 1B Llama: about 2 x 1.0e9 matmul FLOPs per token in the decoder, 2 x 0.26e9 per head position
    per_token = forward_flops("1b", [1], 0) / 1
    assert 1.9e9 < per_token < 2.0e9 and forward_flops("1b", [1], 1) - per_token == 2 * 2048 * 128256


@pytest.mark.slow
def test_pool_benchmark_runs_the_real_score_and_select_stages(tmp_path):
    result = pool.main(["--shape", "tiny", "--samples", "120", "--dir", str(tmp_path / "work"),
                        "--json", str(tmp_path / "pool.json")])
    assert result["samples"] == 120 and result["tokens"] > 0 and result["packing"]
    assert abs(result["select"]["kept_share"] - 0.6) < 0.01  # the stage's own global cut
    for name in ("score", "select"):
        assert result[name]["seconds"] > 0 and 0.01 < result[name]["peak_host_gib"] < 8
    assert result["select"]["peak_host_gib"] < result["score"]["peak_host_gib"]  # no model, no torch weights
    assert json.loads((tmp_path / "pool.json").read_text())["tokens"] == result["tokens"]
