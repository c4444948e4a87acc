using System.Diagnostics;

namespace MedVL.Tests;

/// <summary>Runs the built `medvl` CLI (src/MedVL.Cli, built before the tests) as a separate process.</summary>
public static class CliRunner
{
    public static string DllPath
    {
        get
        {
            // tests/MedVL.Tests/bin/<Config>/net10.0 -> repo root
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            var config = dir.Parent!.Name;
            var root = dir.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
            var dll = Path.Combine(root, "src", "MedVL.Cli", "bin", config, "net10.0", "MedVL.Cli.dll");
            if (!File.Exists(dll)) throw new FileNotFoundException($"medvl CLI not built at {dll}");
            return dll;
        }
    }

    public static (int ExitCode, string StdOut, string StdErr) Run(params string[] args) => Run(args, TimeSpan.FromMinutes(5));

    public static (int ExitCode, string StdOut, string StdErr) Run(string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(DllPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"medvl {string.Join(' ', args)} ran past {timeout}");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
