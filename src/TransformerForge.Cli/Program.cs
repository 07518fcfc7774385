using System.CommandLine;
using TransformerForge.Cli.Commands;

// tforge: a thin command line over the TransformerForge library. Each command lives in Commands/.
var root = new RootCommand("TransformerForge: build, train, sample from and search over transformer architectures.");
foreach (var command in new[]
         {
             InfoCommand.Create(), ParityCommand.Create(), GenerateCommand.Create(), BenchCommand.Create(), TrainCommand.Create(), EvalCommand.Create(), CompareCommand.Create(), SearchCommand.Create(),
         })
    root.Subcommands.Add(command);
return CliRunner.Run(root, args);
