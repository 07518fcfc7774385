// Grouped-query attention through libtorch's fused kernel without repeating keys: TorchSharp 0.107's
// scaled_dot_product_attention has no enable_gqa, so Attention folds the query heads that share a key/value head into
// one longer query sequence (with an explicit causal mask) instead of expanding keys and values to every head (which
// copies them but keeps is_causal). This times both, interleaved, forward + backward (training) and one-token decoding.
//   dotnet build && dotnet fsi scripts/bench/gqa-fold.fsx
#r "../../src/TransformerForge.Cli/bin/Debug/net10.0/TorchSharp.dll"
#r "../../src/TransformerForge.Cli/bin/Debug/net10.0/TransformerForge.dll"
open TorchSharp
open type TorchSharp.torch
TransformerForge.Runtime.TorchRuntime.EnsureLoaded()
let b, h, g, n, d = 8L, 8L, 2L, 256L, 64L
let r = h / g
let q0 = randn([|b; h; n; d|], requires_grad=true)
let k0 = randn([|b; g; n; d|], requires_grad=true)
let v0 = randn([|b; g; n; d|], requires_grad=true)
let expandVariant () =
    let k = k0.unsqueeze(1L).expand([|b; r; g; n; d|]).reshape([|b; h; n; d|])
    let v = v0.unsqueeze(1L).expand([|b; r; g; n; d|]).reshape([|b; h; n; d|])
    nn.functional.scaled_dot_product_attention(q0, k, v, null, 0.0, true)
let hidden = ones([|n; n|], dtype=ScalarType.Bool).triu(1L)
let causalBias = zeros([|1L; 1L; n; n|]).masked_fill(hidden, -1e30)
let groupedMask = causalBias.expand([|1L; h; n; n|]).unflatten(1L, [|r; g|]).transpose(1L, 2L).reshape([|1L; g; r * n; n|])
let foldVariant () =
    let qg = q0.unflatten(1L, [|r; g|]).transpose(1L, 2L).reshape([|b; g; r * n; d|])
    let o = nn.functional.scaled_dot_product_attention(qg, k0, v0, groupedMask, 0.0, false)
    o.reshape([|b; g; r; n; d|]).transpose(1L, 2L).reshape([|b; h; n; d|])
let time (f: unit -> Tensor) =
    let sw = System.Diagnostics.Stopwatch.StartNew()
    for _ in 1..5 do
        use s = NewDisposeScope()
        let o = f ()
        o.sum().backward()
    sw.Elapsed.TotalMilliseconds / 5.0
let median (xs: float list) = let s = List.sort xs in s.[s.Length / 2]
let trainRatios =
    [ for round in 1..8 do
        let a = time expandVariant
        let c = time foldVariant
        printfn "round %d: expand+is_causal %.1f ms, fold+mask %.1f ms, ratio fold/expand %.2f" round a c (c / a)
        yield c / a ]
printfn "training (forward + backward): median ratio fold/expand %.2f" (median trainRatios)
let decodeExpand () =
    let q = randn([|b; h; 1L; d|])
    let k = k0.detach().unsqueeze(1L).expand([|b; r; g; n; d|]).reshape([|b; h; n; d|])
    let v = v0.detach().unsqueeze(1L).expand([|b; r; g; n; d|]).reshape([|b; h; n; d|])
    nn.functional.scaled_dot_product_attention(q, k, v, null, 0.0, false)
let decodeFold () =
    let q = randn([|b; h; 1L; d|])
    let qg = q.unflatten(1L, [|r; g|]).transpose(1L, 2L).reshape([|b; g; r; d|])
    nn.functional.scaled_dot_product_attention(qg, k0.detach(), v0.detach(), null, 0.0, false)
let time2 (f: unit -> Tensor) =
    let sw = System.Diagnostics.Stopwatch.StartNew()
    for _ in 1..50 do
        use s = NewDisposeScope()
        f () |> ignore
    sw.Elapsed.TotalMilliseconds / 50.0
let decodeRatios =
    [ for round in 1..5 do
        let a = time2 decodeExpand
        let c = time2 decodeFold
        printfn "decode round %d: expand %.3f ms, fold %.3f ms, ratio fold/expand %.2f" round a c (c / a)
        yield c / a ]
printfn "decoding (one query, 256 keys): median ratio fold/expand %.2f" (median decodeRatios)
