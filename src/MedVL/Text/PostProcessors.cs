using System.Text.Json;

namespace MedVL.Text;

/// <summary>A post-processor from <c>tokenizer.json</c> <c>post_processor</c> (HF tokenizers/src/processors/).</summary>
internal abstract class PostProcessor
{
    /// <summary>Wraps the single-sequence ids with special tokens; only called when special tokens are requested.</summary>
    public abstract void Process(List<int> ids);

    /// <summary>The first special token id placed before the sequence, if any (used to infer BOS).</summary>
    public virtual int? LeadingSpecialId => null;
    public virtual int? TrailingSpecialId => null;

    public static PostProcessor? Parse(JsonFields f, JsonElement? el, string path, int depth = 0)
    {
        if (el is not { } e) return null;
        if (depth > 8) throw f.Error(path, "post-processors nested deeper than 8 levels");
        string type = f.RequiredString(e, path, "type", 64);
        switch (type)
        {
            case "ByteLevel": return new NoOpPostProcessor(); // only trims offsets (byte_level.rs process_encodings)
            case "Sequence":
            {
                var arr = f.Array(f.Required(e, path, "processors"), $"{path}.processors", 64);
                var list = new List<PostProcessor>();
                int i = 0;
                foreach (var item in arr.EnumerateArray())
                {
                    if (Parse(f, item, $"{path}.processors[{i}]", depth + 1) is { } p) list.Add(p);
                    i++;
                }
                return new SequencePostProcessor(list);
            }
            case "TemplateProcessing": return TemplatePostProcessor.ParseTemplate(f, e, path);
            case "BertProcessing":
            case "RobertaProcessing":
            {
                int Id(string name)
                {
                    var pair = f.Required(e, path, name);
                    if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2) throw f.Error($"{path}.{name}", "expected [token, id]");
                    return f.Int(pair[1], $"{path}.{name}[1]");
                }
                int cls = Id("cls"), sep = Id("sep");
                return new TemplatePostProcessor([new(true, cls), new(false, 0), new(true, sep)]);
            }
            default:
                throw f.Error($"{path}.type", $"unsupported post-processor \"{type}\" (supported: TemplateProcessing, ByteLevel, Sequence, BertProcessing, RobertaProcessing)");
        }
    }
}

internal sealed class NoOpPostProcessor : PostProcessor
{
    public override void Process(List<int> ids) { }
}

internal sealed class SequencePostProcessor(List<PostProcessor> items) : PostProcessor
{
    public override void Process(List<int> ids)
    {
        foreach (var p in items) p.Process(ids);
    }
    public override int? LeadingSpecialId => items.Select(p => p.LeadingSpecialId).FirstOrDefault(x => x != null);
    public override int? TrailingSpecialId => items.Select(p => p.TrailingSpecialId).LastOrDefault(x => x != null);
}

/// <summary>processors/template.rs, single-sequence template only (pairs are not used by generation).</summary>
internal sealed class TemplatePostProcessor : PostProcessor
{
    /// <summary>One template element: a run of special-token ids, or the sequence itself (<c>$A</c>).</summary>
    internal readonly record struct Item(bool IsSpecial, int Id, int[]? Ids = null);

    private readonly Item[] _single;

    public TemplatePostProcessor(Item[] single) => _single = single;

    public override void Process(List<int> ids)
    {
        var seq = ids.ToArray();
        ids.Clear();
        foreach (var it in _single)
        {
            if (!it.IsSpecial) ids.AddRange(seq);
            else if (it.Ids != null) ids.AddRange(it.Ids);
            else ids.Add(it.Id);
        }
    }

    public override int? LeadingSpecialId =>
        _single.Length > 0 && _single[0].IsSpecial ? (_single[0].Ids is { Length: > 0 } a ? a[0] : _single[0].Ids == null ? _single[0].Id : null) : null;

    public override int? TrailingSpecialId =>
        _single.Length > 1 && _single[^1].IsSpecial ? (_single[^1].Ids is { Length: > 0 } a ? a[^1] : _single[^1].Ids == null ? _single[^1].Id : null) : null;

    public static TemplatePostProcessor ParseTemplate(JsonFields f, JsonElement e, string path)
    {
        var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (f.Optional(e, "special_tokens") is { } st)
        {
            if (st.ValueKind != JsonValueKind.Object) throw f.Error($"{path}.special_tokens", "expected an object");
            foreach (var prop in st.EnumerateObject())
            {
                string sp = $"{path}.special_tokens[\"{JsonFields.Truncate(prop.Name)}\"]";
                var idsEl = f.Array(f.Required(prop.Value, sp, "ids"), $"{sp}.ids", 1024);
                var list = new int[idsEl.GetArrayLength()];
                int k = 0;
                foreach (var x in idsEl.EnumerateArray()) { list[k] = f.Int(x, $"{sp}.ids[{k}]"); k++; }
                specials[prop.Name] = list;
            }
        }
        var single = f.Array(f.Required(e, path, "single"), $"{path}.single", 1024);
        var items = new List<Item>();
        int i = 0;
        foreach (var piece in single.EnumerateArray())
        {
            string pp = $"{path}.single[{i++}]";
            if (f.Optional(piece, "SpecialToken") is { } s)
            {
                string id = f.RequiredString(s, $"{pp}.SpecialToken", "id", 1024);
                if (!specials.TryGetValue(id, out var ids)) throw f.Error($"{pp}.SpecialToken.id", $"\"{id}\" is not declared in special_tokens");
                items.Add(new Item(true, 0, ids));
            }
            else if (f.Optional(piece, "Sequence") is { } q)
            {
                string id = f.RequiredString(q, $"{pp}.Sequence", "id", 8);
                if (id != "A") throw f.Error($"{pp}.Sequence.id", $"the single template can only reference sequence A, found \"{id}\"");
                items.Add(new Item(false, 0));
            }
            else throw f.Error(pp, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
        }
        return new TemplatePostProcessor(items.ToArray());
    }
}
