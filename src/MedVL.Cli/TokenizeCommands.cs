using System.CommandLine;
using System.Text.Json;
using MedVL.Text;

namespace MedVL.Cli;

/// <summary>`medvl tokenize`: ids exactly as Hugging Face's tokenizer for a model folder's tokenizer.json.</summary>
internal static class TokenizeCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "model folder with tokenizer.json (or tokenizer.json.gz) and optionally tokenizer_config.json", Required = true };
        var text = new Option<string>("--text") { Description = "text to encode", Required = true };
        var noSpecial = new Option<bool>("--no-special") { Description = "do not add the tokenizer's default special tokens (BOS/EOS)" };
        var cmd = new Command("tokenize", "Print the token ids of a text as a JSON array") { model, text, noSpecial };
        cmd.SetAction(r =>
        {
            var tok = Tokenizer.FromDirectory(r.GetValue(model)!.FullName);
            Console.WriteLine(JsonSerializer.Serialize(tok.Encode(r.GetValue(text)!, addSpecialTokens: !r.GetValue(noSpecial))));
            return 0;
        });
        return cmd;
    }
}
