using System.Text;

namespace MedVL.Text.Templates;

/// <summary>Who speaks a turn.</summary>
public enum ChatRole { User, Assistant }

/// <summary>One turn. <see cref="Content"/> null on the last assistant turn asks for a generation prompt.</summary>
public sealed record ChatTurn(ChatRole Role, string? Content, bool HasImage = false);

/// <summary>How the turns are joined (LLaVA conversation.py <c>SeparatorStyle</c>).</summary>
public enum SeparatorStyle
{
    /// <summary><c>system + sep</c>, then <c>role + message + sep</c> (or just <c>role</c> for the open turn).</summary>
    Mpt,
    /// <summary>Identical rendering to <see cref="Mpt"/> in HealthGPT's conversation.py (<c>QWEN_2</c>).</summary>
    Qwen2,
    /// <summary><c>system + sep</c>, then <c>role + ": " + message + seps[i % 2]</c> (or <c>role + ":"</c>).</summary>
    Two,
    /// <summary><c>system</c>, then <c>message + seps[i % 2]</c>; the open turn adds nothing.</summary>
    Plain,
}

/// <summary>
/// A LLaVA-style conversation template (the <c>Conversation</c> dataclass of llava/conversation.py as used by HealthGPT
/// and Med-MoE's moellava/conversation.py). Immutable; render with <see cref="Render"/>.
/// </summary>
public sealed record ConversationTemplate(
    string Name,
    string System,
    string UserRole,
    string AssistantRole,
    SeparatorStyle Style,
    string Sep,
    string? Sep2,
    IReadOnlyList<string> StopStrings)
{
    /// <summary>
    /// Renders the prompt. A turn with <see cref="ChatTurn.HasImage"/> gets <c>"&lt;image&gt;\n"</c> in front of its text,
    /// as <c>get_prompt</c> does for the first message (it strips any <c>&lt;image&gt;</c> in the text and prepends one).
    /// </summary>
    public string Render(IReadOnlyList<ChatTurn> turns)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var sb = new StringBuilder();
        switch (Style)
        {
            case SeparatorStyle.Mpt:
            case SeparatorStyle.Qwen2:
                sb.Append(System).Append(Sep);
                foreach (var t in turns)
                {
                    string role = t.Role == ChatRole.User ? UserRole : AssistantRole;
                    if (Message(t) is { } m) sb.Append(role).Append(m).Append(Sep);
                    else sb.Append(role);
                }
                break;
            case SeparatorStyle.Two:
            {
                sb.Append(System).Append(Sep);
                for (int i = 0; i < turns.Count; i++)
                {
                    var t = turns[i];
                    string role = t.Role == ChatRole.User ? UserRole : AssistantRole;
                    if (Message(t) is { } m) sb.Append(role).Append(": ").Append(m).Append(i % 2 == 0 ? Sep : Sep2);
                    else sb.Append(role).Append(':');
                }
                break;
            }
            case SeparatorStyle.Plain:
            {
                sb.Append(System);
                for (int i = 0; i < turns.Count; i++)
                    if (Message(turns[i]) is { } m) sb.Append(m).Append(i % 2 == 0 ? Sep : Sep2);
                break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Single-turn prompt for inference: one user question (with image) and an open assistant turn.</summary>
    public string RenderQuestion(string question, bool hasImage = true) =>
        Render([new ChatTurn(ChatRole.User, question, hasImage), new ChatTurn(ChatRole.Assistant, null)]);

    private static string? Message(ChatTurn t)
    {
        if (string.IsNullOrEmpty(t.Content)) return null; // Python treats "" and None alike (`if message:`)
        if (!t.HasImage) return t.Content;
        // conversation.py: init_msg.replace("<image>", "").strip(), then "<image>\n" + init_msg.
        return "<image>\n" + t.Content.Replace("<image>", "").Trim();
    }

    /// <summary>Ids of the stop strings that the tokenizer knows as single tokens.</summary>
    public int[] StopTokenIds(Tokenizer tokenizer)
    {
        var ids = new List<int>();
        foreach (var s in StopStrings) if (tokenizer.TokenToId(s) is { } id && !ids.Contains(id)) ids.Add(id);
        return ids.ToArray();
    }
}

/// <summary>The templates used by HealthGPT (llava/conversation.py) and Med-MoE (moellava/conversation.py), by name.</summary>
public static class ConversationTemplates
{
    private const string VicunaSystem =
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

    /// <summary>HealthGPT-M3 (Phi-3-mini): MPT style with Phi-3 chat tokens. Phi-3's generation_config stops on 32000, 32001, 32007.</summary>
    public static ConversationTemplate Phi3Instruct { get; } = new("phi3_instruct",
        "<|system|>\nYou are a helpful AI assistant.", "<|user|>\n", "<|assistant|>\n", SeparatorStyle.Mpt, "<|end|>\n", null,
        ["<|end|>", "<|endoftext|>", "<|assistant|>"]);

    /// <summary>HealthGPT-L14 (phi-4): MPT style; the system prompt is the phi-4 model-card example, as released.</summary>
    public static ConversationTemplate Phi4Instruct { get; } = new("phi4_instruct",
        "<|im_start|>system<|im_sep|>\nYou are a medieval knight and must provide explanations to modern people.",
        "<|im_start|>user<|im_sep|>\n", "<|im_start|>assistant<|im_sep|>\n", SeparatorStyle.Mpt, "<|im_end|>\n", null,
        ["<|im_end|>", "<|endoftext|>"]);

    /// <summary>HealthGPT-XL32 (Qwen2.5-32B-Instruct): QWEN_2 style.</summary>
    public static ConversationTemplate Qwen2 { get; } = new("qwen_2",
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        "<|im_start|>user\n", "<|im_start|>assistant\n", SeparatorStyle.Qwen2, "<|im_end|>\n", null,
        ["<|im_end|>", "<|endoftext|>"]);

    /// <summary>Med-MoE Phi-2 (<c>conv_phi</c>): TWO style, sep " ", sep2 "&lt;|endoftext|&gt;"; stop keyword is sep2.</summary>
    public static ConversationTemplate Phi { get; } = new("phi", VicunaSystem, "USER", "ASSISTANT", SeparatorStyle.Two, " ", "<|endoftext|>", ["<|endoftext|>"]);

    /// <summary>Med-MoE StableLM-2 (<c>conv_stablelm</c>): identical to <see cref="Phi"/>.</summary>
    public static ConversationTemplate StableLm { get; } = Phi with { Name = "stablelm" };

    /// <summary>LLaVA <c>conv_llava_plain</c> (pre-training): no system, no roles, sep "\n". sep2 is None upstream; we use "".</summary>
    public static ConversationTemplate Plain { get; } = new("plain", "", "", "", SeparatorStyle.Plain, "\n", "", ["\n"]);

    public static IReadOnlyList<ConversationTemplate> All { get; } = [Phi3Instruct, Phi4Instruct, Qwen2, Phi, StableLm, Plain];

    /// <summary>Looks a template up by its upstream key (also <c>qwen</c> = Med-MoE's alias of <c>phi</c>).</summary>
    public static ConversationTemplate Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name == "qwen") return Phi with { Name = "qwen" };
        foreach (var t in All) if (t.Name == name) return t;
        throw new ArgumentException($"unknown conversation template \"{name}\"; known: {string.Join(", ", All.Select(t => t.Name))}, qwen", nameof(name));
    }
}
