namespace MedVL.Tests.Cli;

public class CliSmokeTests
{
    [Fact]
    public void HelpNamesTheCommandMedvl()
    {
        var (code, stdout, _) = CliRunner.Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("medvl", stdout);
        Assert.Contains("HealthGPT", stdout);
    }
}
