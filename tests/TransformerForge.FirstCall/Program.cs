using TorchSharp;

// The very first statement is a TorchSharp call: no TransformerForge type has been touched. It works because the
// TransformerForge reference compiles TorchRuntime.Attach into this program (build/TransformerForge.targets).
torch.manual_seed(42);
using var x = torch.rand(3);
Console.WriteLine($"first call ok: {x.sum().item<float>():F6}");
return 0;
