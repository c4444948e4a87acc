using System.CommandLine;

namespace MedVL.Cli;

/// <summary>The list of top-level commands. Each area adds its command group in its own file and one line here.</summary>
internal static class CliCommands
{
    public static IEnumerable<Command> All()
    {
        yield return Bench.BenchCommand.Create();
        yield return EvalCommands.Build();
        yield return SynthCommands.Build();
        yield return ImageCommands.Build();
        yield return TokenizeCommands.Build();
        yield return PreprocessCommands.Build();
        yield return InspectCommands.Build();
        yield return DemoCommands.Build();
        yield return LogitsCommands.Build();
        yield return VisionCommands.Build();
        yield return GenerateCommands.Build();
        yield return AskCommands.Build();
        yield return GenerateImageCommands.Build();
        yield return ParamsCommands.Build();
        yield return RouteCommands.Build();
        yield return TrainCommands.Build();
        yield return PredictCommands.Build();
    }
}
