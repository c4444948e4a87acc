using BenchmarkDotNet.Running;

// BenchmarkDotNet entry point: `dotnet run -c Release --project bench/MedVL.Bench -- --filter '*'`.
// Whole-model and kernel throughput tables for docs/benchmarks.md come from `medvl bench ...`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
