using TransformerForge.Parity;

var root = args.Length > 1 ? args[1] : "../shared/fixtures/xtransformers";
int fails = 0;
foreach (var r in ParityRunner.RunAll(root)) { Console.WriteLine(r); if (!r.Pass) fails++; }
return fails == 0 ? 0 : 1;
