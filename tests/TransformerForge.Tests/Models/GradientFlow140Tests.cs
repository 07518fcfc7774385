using System.Text.Json;
using TorchSharp;
using TransformerForge.Parity;
using TransformerForge.Tests.Parity;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Models;

/// <summary>
/// Every x-transformers 1.40 option trains: for each 1.40 fixture and reference case, one backward pass from the
/// case's inputs reaches every parameter, and one optimizer step changes each of them.
/// </summary>
public class GradientFlow140Tests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var name in XTransformers140ParityTests.Cases()) data.Add(Path.Combine(TestPaths.Fixture(XTransformers140ParityTests.Family), name));
        foreach (var name in XTransformers140ParityTests.ReferenceCases()) data.Add(TestPaths.RepoFixture(XTransformers140ParityTests.ReferenceFamily, name));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OneStepReachesAndChangesEveryParameter(string dir)
    {
        var name = Path.GetFileName(dir);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "case.json")));
        var call = CaseKinds.Prepare(dir, doc.RootElement);
        var (model, outputs) = call(ScalarType.Float32, CPU);
        model.train();

        var loss = outputs.Values.Where(o => o.requires_grad).Select(o => o.square().mean()).Aggregate((a, b) => a + b);
        loss.backward();

        var parameters = model.named_parameters().ToList();
        Assert.NotEmpty(parameters);
        var before = parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone());
        foreach (var (pname, p) in parameters)
        {
            Assert.True(p.grad is not null, $"{name}: no gradient reached {pname}");
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name}: zero gradient for {pname}");
        }
        using var opt = optim.Adam(model.parameters(), lr: 1e-3);
        opt.step();
        foreach (var (pname, p) in parameters)
            Assert.False(p.detach().eq(before[pname]).all().item<bool>(), $"{name}: {pname} did not change after a step");
    }
}
