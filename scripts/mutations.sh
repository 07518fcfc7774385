#!/usr/bin/env bash
# The mutations of docs/testing.md ("Mutations applied on purpose"), one scripts/mutate.sh call each: the library is
# changed for real, built, the named tests run, and the change reverted. Prints one line per mutation.
#
#   scripts/mutations.sh            # every row, each with its filter
#   scripts/mutations.sh NAME...    # only these rows
#   FULL=1 scripts/mutations.sh ... # the whole suite instead of the filter
#
# Rebuild afterwards (`dotnet build`): the last build holds the last mutant.
set -uo pipefail
cd "$(git rev-parse --show-toplevel)"
only=("$@")

opt='FullyQualifiedName~TransformerForge.Tests.Options'
drop='FullyQualifiedName~DropoutTests'
primer='FullyQualifiedName~Primer|FullyQualifiedName~AttentionReferenceTests|FullyQualifiedName~LabmlParityTests|FullyQualifiedName~KvCacheTests'
parity='FullyQualifiedName~XTransformersParityTests'
cache='FullyQualifiedName~KvCacheTests'

m() {
  local name=$1 filter=$2; shift 2
  if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then return; fi
  [ -n "${FULL:-}" ] && filter=""
  scripts/mutate.sh "$name" "$filter" "$@"
}

# --- the changes issue 11's review found to leave the suite green ---
m dropout-all-zero "$drop" \
  Modules/Attention.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/; s/training \? _o\.Dropout : 0\.0/0.0/' \
  Modules/FeedForward.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/' \
  Modules/FeedbackAttention.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/' \
  Modules/FeedbackLayer.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/' \
  Modules/PositionwiseFeedForward.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/' \
  Models/TransformerWrapper.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/' \
  Models/ContinuousTransformerWrapper.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/' \
  Models/ViTransformerWrapper.cs 's/nn\.Dropout\([^)]*\)/nn.Dropout(0.0)/'
m scale_residual-never-built "$opt|FullyQualifiedName~InitializationTests" \
  Modules/AttentionLayers.cs 's/new GRUGating\(c\.Dim, c\.ScaleResidual\) : new Residual\(c\.Dim, c\.ScaleResidual\)/new GRUGating(c.Dim, false) : new Residual(c.Dim, false)/'
m scale_residual-not-applied "$opt|$parity" \
  Modules/Residual.cs 's/\? output \+ residual \* scale :/? output + residual :/; s/residual = residual \* scale;/residual = residual + 0 * scale;/'
m attn_max_attend_past-ignored "$opt|FullyQualifiedName~AttentionTests|$cache" \
  Modules/Attention.cs 's/_causal, _o\.MaxAttendPast,/_causal, null,/'
m use_pos_emb-ignored "$opt" \
  Models/TransformerWrapper.cs 's/if \(c\.UsePosEmb && !c\.AttnLayers\.HasPosEmb\)/if (!c.AttnLayers.HasPosEmb)/' \
  Models/ContinuousTransformerWrapper.cs 's/if \(c\.UsePosEmb && !c\.AttnLayers\.HasPosEmb\)/if (!c.AttnLayers.HasPosEmb)/'
m return_attn-pre-softmax "$opt|$parity" \
  Models/TransformerWrapper.cs 's/a\.PostSoftmaxAttn!/a.PreSoftmaxAttn!/'
m rotary_emb_dim-ignored "$opt|$parity" \
  Config/AttentionLayersConfig.cs 's/Math\.Max\(RotaryEmbDim \?\? Attn\.DimHead \/ 2, 32\)/Math.Max(Attn.DimHead \/ 2, 32)/'
m custom_layers-reversed "$opt" \
  Config/AttentionLayersConfig.cs 's/return custom\.Select\(s => s\[0\]\)\.ToArray\(\);/return custom.Select(s => s[0]).Reverse().ToArray();/'
m par_ratio-ignored "$opt" \
  Config/AttentionLayersConfig.cs '/public IReadOnlyList<char> LayerTypes\(\)/,/^    }$/s/if \(ParRatio is \{ \} par\)/if (ParRatio is { } par \&\& par < 0)/'
m primer-value-conv-removed "$primer" \
  Modules/Attention.cs '/v = DConv\(_vConv!, v, cache, CacheHistory\.ValueConv\);/d'
m rezero-gate-ignored "$parity|$cache|FullyQualifiedName~InitializationTests" \
  Modules/BranchWrappers.cs 's/\.Map\(t => t \* get_parameter\("g"\)!\)/.Map(t => t)/'
m rezero-gate-at-initial-zero "$parity|$cache|FullyQualifiedName~InitializationTests" \
  Modules/BranchWrappers.cs 's/\.Map\(t => t \* get_parameter\("g"\)!\)/.Map(t => t * get_parameter("g")! * 0)/'

# --- one option at a time ---
m attn_dropout-ignored "$drop" \
  Modules/Attention.cs 's/nn\.Dropout\(options\.Dropout\)/nn.Dropout(0.0)/; s/training \? _o\.Dropout : 0\.0/0.0/'
m attn_dropout-fused-path-only "$drop" \
  Modules/Attention.cs 's/training \? _o\.Dropout : 0\.0/0.0/'
m ff_dropout-ignored "$drop" \
  Modules/FeedForward.cs 's/nn\.Dropout\(options\.Dropout\)/nn.Dropout(0.0)/'
m emb_dropout-ignored "$drop" \
  Models/TransformerWrapper.cs 's/nn\.Dropout\(c\.EmbDropout\)/nn.Dropout(0.0)/'
m continuous-emb_dropout-ignored "$drop" \
  Models/ContinuousTransformerWrapper.cs 's/nn\.Dropout\(c\.EmbDropout\)/nn.Dropout(0.0)/'
m vit-emb_dropout-ignored "$drop" \
  Models/ViTransformerWrapper.cs 's/nn\.Dropout\(c\.EmbDropout\)/nn.Dropout(0.0)/'
m feedback-dropout-ignored "$drop|FullyQualifiedName~Feedback" \
  Modules/FeedbackLayer.cs 's/nn\.Dropout\(dropout\)/nn.Dropout(0.0)/'
m sandwich_coef-ignored "$opt" \
  Config/AttentionLayersConfig.cs '/public IReadOnlyList<char> LayerTypes\(\)/,/^    }$/s/if \(SandwichCoef is \{ \} k\)/if (SandwichCoef is { } k \&\& k < 0)/'
m macaron-order-ignored "$opt|$parity" \
  Config/AttentionLayersConfig.cs 's/return Macaron \? new\[\] \{ .f. \}\.Concat\(block\)\.ToArray\(\) : block;/return block;/'
m macaron-half-step-ignored "$opt|$parity" \
  Modules/AttentionLayers.cs 's/c\.Macaron \? new Scale\(0\.5, ff\) : ff/ff/'
m primer-query-conv-removed "$primer" \
  Modules/Attention.cs '/q = DConv\(_qConv, q, cache, CacheHistory\.QueryConv\);/d'
m primer-key-conv-removed "$primer" \
  Modules/Attention.cs '/k = DConv\(_kConv!, k, cache, CacheHistory\.KeyConv\);/d'
m attn_dconv_kernel_size-ignored "$primer" \
  Modules/Attention.cs 's/, options\.DconvKernelSize\)\);/, 3));/g'
m attn_qkv_bias-ignored "$primer" \
  Modules/Attention.cs 's/hasBias: options\.QkvBias/hasBias: false/g'
m alibi_num_heads-ignored "$opt|$parity" \
  Modules/AttentionLayers.cs 's/new AlibiPositionalBias\(c\.AlibiNumHeads \?\? c\.Heads,/new AlibiPositionalBias(c.Heads,/'
m residual_attn-ignored "$parity|$cache" \
  Modules/AttentionLayers.cs "s/if \(layer\.Kind == 'a' && Config\.ResidualAttn\) prevAttn/if (false) prevAttn/"
m sandwich_norm-ignored "$parity" \
  Modules/AttentionLayers.cs 's/c\.SandwichNorm \? NewNorm\(c\) : null/null/'
m rel_pos_buckets-ignored "$opt|$parity" \
  Modules/AttentionLayers.cs 's/causal, c\.RelPosNumBuckets, c\.RelPosMaxDistance, c\.Heads/causal, 32, 128, c.Heads/'
m zero_init_branch_output-ignored "FullyQualifiedName~InitializationTests|$opt" \
  Modules/Attention.cs 's/if \(zeroInitOutput\) Init\.Zero\(proj\);/if (false) Init.Zero(proj);/' \
  Modules/FeedForward.cs 's/if \(zeroInitOutput\) Init\.Zero\(_projectOut\);/if (false) Init.Zero(_projectOut);/'
m alibi_learned-slopes-unused "$opt|$parity" \
  Modules/AlibiPositionalBias.cs 's/get_parameter\("learned_logslopes"\) is \{ \} l \? l\.exp\(\) : get_buffer/get_buffer/'
# Cached values stored at half their size: cache == recompute must see it in every scheme, ReZero's included (it
# does only because the weights are perturbed: at ReZero's initial gate 0 no attention reaches the logits).
m kv-cache-values-corrupted "$cache" \
  Modules/LayerCache.cs 's/_values!\.narrow\(2, _length, n\)\.copy_\(values\);/_values!.narrow(2, _length, n).copy_(values * 0.5);/'
# Stryker's surviving mutants in ShiftTokens, killed by Options/ShiftTokensTests.
m shift_tokens-mask-ignored "$opt" \
  Modules/BranchWrappers.cs 's/var masked = mask is null \? x :/var masked = true ? x :/'
m shift_tokens-future-guard-removed "$opt" \
  Modules/BranchWrappers.cs 's/if \(_shifts\.Min\(\) < 0\) throw/if (_shifts.Max() < 0) throw/'
