#!/usr/bin/env bash
# The Stryker survivors of the attention run (docs/testing.md, "Attention survivors, judged") judged real, each applied
# by hand with scripts/mutate.sh against the test that kills it. Named by the mutant ids of that report. About a minute
# a row on the shared machine. Run from the repository root: scripts/mutations-attention.sh
cd "$(git rev-parse --show-toplevel)"
P140="FullyQualifiedName~XTransformers140ParityTests.MatchesReferenceCase"
AL="FullyQualifiedName~Modules.AttentionLayersTests"
MEM="FullyQualifiedName~PersistentMemoryKeysTakeTheFirstAlibiPositions"
LP="FullyQualifiedName~MasksHoldInLowPrecision"
ROT="FullyQualifiedName~Modules.RotaryEmbeddingTests"
INIT="FullyQualifiedName~Tests.Models.Initialization"
A=Modules/Attention.cs; L=Modules/AttentionLayers.cs; R=Modules/RotaryEmbedding.cs
m() { scripts/mutate.sh "$@"; }
m 5772 "$P140" $A 's/options.PreTalkingHeads \? HeadMixer/true ? HeadMixer/'
m 5838 "$MEM" $A 's/_v140 \? keysWithoutMemory : j/true ? keysWithoutMemory : j/'
m 5839 "$P140" $A 's/_v140 \? keysWithoutMemory : j/false ? keysWithoutMemory : j/'
m 5844 "$P140" $A 's/_o.NumMemKv > 0\) bias/_o.NumMemKv < 0) bias/'
m 5846 "$P140" $A 's/new long\[\] \{ _o.NumMemKv, 0 \}\);/new long[] {});/'
m 5996 "$MEM" $A 's/_v140 \? null : dots.clone\(\)/true ? null : dots.clone()/'
m 6008 "$MEM" $A 's/preSoftmax \?\?= dots;/preSoftmax = dots;/'
m 6086 "$LP" $A 's/dtype == ScalarType.Float16 \? -30000.0/false ? -30000.0/'
m 6088 "$LP" $A 's/\? -30000.0 : -1e30/? +30000.0 : -1e30/'
m 6091 "$LP" $A 's/ScalarType.Float16 => -65504.0/ScalarType.Float16 => +65504.0/'
m 6092 "$LP" $A 's/=> -3.3895313892515355e38/=> +3.3895313892515355e38/'
m 6111 "$AL" $L "s/LayerTypes\[i\] == 'a'\)/LayerTypes[i] != 'a')/"
m 6149 "FullyQualifiedName~ShiftTokensTests" $L 's/2 \* shifts\[i\] \+ 1/2 \/ shifts[i] + 1/'
m 6184 "$AL" $L 's/1e-12 \/ Math.Sqrt/1e-12 * Math.Sqrt/'
m 6196 "$AL" $L 's/Config.HasCrossAttention \? "context must/true ? "context must/'
m 6197 "$AL" $L 's/Config.HasCrossAttention \? "context must/false ? "context must/'
m 6198 "$AL" $L 's/"context must be passed in when cross_attend is set"/""/'
m 6199 "$AL" $L 's/"context given but cross_attend is not set"/""/'
m 6206 "$AL" $L 's/\$"expected \{NumAttnLayers\} memories \(one per self-attention layer\), got \{mems.Count\}"/$""/'
m 6223 "$AL" $L 's/layerMems\?\.Max\(/layerMems?.Min(/'
m 6229 "$AL" $L 's/: mask is not null && memLen > 0 \? cat/: false ? cat/'
m 6232 "$AL" $L 's/memLen > 0 \? cat/memLen < 0 ? cat/'
m 6285 "$P140" $L 's/firstCrossValues \?\?= result.Values/firstCrossValues = result.Values/'
m 7001 "$ROT" $R 's/\) \/ \(1.4 \* dim\)/) * (1.4 * dim)/'
m 7003 "$ROT" $R 's/0.4 \* dim/0.4 \/ dim/'
m 7004 "$ROT" $R 's/1.4 \* dim/1.4 \/ dim/'
m 7021 "$ROT" $R 's/if \(!LowPrecision.IsLow\(t.dtype\)\)/if (LowPrecision.IsLow(t.dtype))/'
m 5754 "$INIT" $A 's/Init.Fill\(_toVGate.weight!, 0\);/;/'
m 5755 "$INIT" $A 's/Init.Fill\(_toVGate.bias!, _v140 \? 10 : 1\);/;/'
m 5756 "$INIT" $A 's/_v140 \? 10 : 1/true ? 10 : 1/'
m 5757 "$INIT" $A 's/_v140 \? 10 : 1/false ? 10 : 1/'
m 5761 "$INIT" $A 's/Init.Fill\(_toVHeadGate.weight!, 0\);/;/'
m 5762 "$INIT" $A 's/Init.Fill\(_toVHeadGate.bias!, 10\);/;/'
m 5809 "$INIT" $A 's/if \(zeroInitOutput\) Init/if (!zeroInitOutput) Init/'
m 5810 "$INIT" $A 's/if \(zeroInitOutput\) Init.Zero\(proj\);/if (zeroInitOutput) ;/'
m 5823 "$INIT" $A 's/using \(no_grad\(\)\) conv.weight!.copy_\(eye\(heads\).reshape\(heads, heads, 1, 1\)\);/;/'
m 6113 "FullyQualifiedName~LayerStackTypeTests" $L 's/        c.Validate\(\);/        ;/'
