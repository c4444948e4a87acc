using System.CommandLine;
using MedVL.Cli;

var root = new RootCommand("MedVL: medical vision-language models (HealthGPT, Med-MoE) on the CPU, in pure .NET.");
foreach (var c in CliCommands.All()) root.Subcommands.Add(c);
return await root.Parse(args).InvokeAsync();
