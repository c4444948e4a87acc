using System.CommandLine;
using System.CommandLine.Help;
using MedVL.Cli;

// The root is a plain Command named "medvl" (a RootCommand would take the assembly's name, MedVL.Cli, which cannot be
// "medvl": assembly names are case-insensitive and the library is MedVL).
var root = new Command("medvl", "MedVL: medical vision-language models (HealthGPT, Med-MoE) on the CPU, in pure .NET.");
root.Options.Add(new HelpOption());
root.Options.Add(new VersionOption());
foreach (var c in CliCommands.All()) root.Subcommands.Add(c);
try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or FormatException or NotSupportedException or MedVL.Training.TrainingDivergedException)
{
    // Bad input: the message names the file, the field and what was expected; no stack trace for the user.
    Console.Error.WriteLine($"medvl: error: {e.Message}");
    return 1;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("medvl: cancelled");
    return 130;
}
