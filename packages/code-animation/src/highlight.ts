/**
 * A small syntax highlighter: enough to colour keywords, strings, comments, numbers and calls of the
 * languages people put on screen, with no dependency (it runs inside the Remotion bundle and, later, the
 * editor's preview). It splits the code into tokens; it does not parse.
 */

export type TokenKind = "plain" | "keyword" | "string" | "comment" | "number" | "function" | "type" | "punctuation";

export interface Token {
  text: string;
  kind: TokenKind;
}

interface LanguageSpec {
  keywords: ReadonlySet<string>;
  lineComment?: readonly string[];
  blockComment?: readonly [string, string];
  /** String delimiters; triple quotes are tried before single ones. */
  quotes: readonly string[];
  /** Capitalised identifiers are types (most C-family languages). */
  capitalisedTypes?: boolean;
}

const words = (s: string) => new Set(s.split(/\s+/).filter(Boolean));

const JS_KEYWORDS =
  "abstract as async await break case catch class const continue debugger declare default delete do else enum export extends " +
  "false finally for from function get if implements import in infer instanceof interface is keyof let namespace new null " +
  "of private protected public readonly return satisfies set static super switch this throw true try type typeof undefined " +
  "var void while with yield any boolean number string never unknown object symbol bigint";

const LANGUAGES: Record<string, LanguageSpec> = {
  typescript: { keywords: words(JS_KEYWORDS), lineComment: ["//"], blockComment: ["/*", "*/"], quotes: ["`", '"', "'"], capitalisedTypes: true },
  python: {
    keywords: words(
      "and as assert async await break class continue def del elif else except False finally for from global if import in is " +
        "lambda None nonlocal not or pass raise return True try while with yield self match case",
    ),
    lineComment: ["#"],
    quotes: ['"""', "'''", '"', "'"],
    capitalisedTypes: true,
  },
  ruby: {
    keywords: words(
      "alias and begin break case class def defined? do else elsif end ensure false for if in module next nil not or redo " +
        "rescue retry return self super then true undef unless until when while yield require attr_reader attr_accessor private",
    ),
    lineComment: ["#"],
    quotes: ['"', "'"],
    capitalisedTypes: true,
  },
  go: {
    keywords: words(
      "break case chan const continue default defer else fallthrough for func go goto if import interface map package range " +
        "return select struct switch type var nil true false string int int64 float64 bool error byte rune",
    ),
    lineComment: ["//"],
    blockComment: ["/*", "*/"],
    quotes: ["`", '"', "'"],
    capitalisedTypes: true,
  },
  rust: {
    keywords: words(
      "as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod move mut pub " +
        "ref return self Self static struct super trait true type unsafe use where while i32 i64 u8 u32 u64 usize f64 bool str String Vec Option Some None Ok Err",
    ),
    lineComment: ["//"],
    blockComment: ["/*", "*/"],
    quotes: ['"'],
    capitalisedTypes: true,
  },
  c: {
    keywords: words(
      "auto break case char const continue default do double else enum extern float for goto if inline int long register return " +
        "short signed sizeof static struct switch typedef union unsigned void volatile while class namespace public private protected " +
        "template typename using virtual new delete this true false nullptr bool final override package import extends implements " +
        "interface throws throw try catch finally var val fun String",
    ),
    lineComment: ["//"],
    blockComment: ["/*", "*/"],
    quotes: ['"', "'"],
    capitalisedTypes: true,
  },
  sql: {
    keywords: words(
      "select from where and or not insert into values update set delete create table alter drop index on join left right inner " +
        "outer group by order having limit offset as distinct null is in exists case when then else end primary key references " +
        "SELECT FROM WHERE AND OR NOT INSERT INTO VALUES UPDATE SET DELETE CREATE TABLE ALTER DROP INDEX ON JOIN LEFT RIGHT INNER " +
        "OUTER GROUP BY ORDER HAVING LIMIT OFFSET AS DISTINCT NULL IS IN EXISTS CASE WHEN THEN ELSE END PRIMARY KEY REFERENCES",
    ),
    lineComment: ["--"],
    blockComment: ["/*", "*/"],
    quotes: ["'", '"'],
  },
  shell: {
    keywords: words("if then else elif fi for in do done while until case esac function return export local echo exit set"),
    lineComment: ["#"],
    quotes: ['"', "'"],
  },
  json: { keywords: words("true false null"), quotes: ['"'] },
  plain: { keywords: new Set(), quotes: [] },
};

const ALIASES: Record<string, string> = {
  ts: "typescript",
  tsx: "typescript",
  typescript: "typescript",
  js: "typescript",
  jsx: "typescript",
  javascript: "typescript",
  py: "python",
  python: "python",
  rb: "ruby",
  ruby: "ruby",
  go: "go",
  golang: "go",
  rs: "rust",
  rust: "rust",
  c: "c",
  h: "c",
  cpp: "c",
  "c++": "c",
  csharp: "c",
  cs: "c",
  java: "c",
  kotlin: "c",
  swift: "c",
  sql: "sql",
  sh: "shell",
  bash: "shell",
  shell: "shell",
  zsh: "shell",
  json: "json",
  text: "plain",
  plain: "plain",
};

/** The highlighter's name for a language the user typed ("TS", "tsx", "Python"); "plain" when unknown. */
export function languageOf(language: string | undefined): string {
  return ALIASES[(language ?? "").trim().toLowerCase()] ?? "plain";
}

const IDENT = /[A-Za-z_$][A-Za-z0-9_$?!]*/y;
const NUMBER = /(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)[a-zA-Z]*/y;
const SPACE = /\s+/y;

function matchAt(re: RegExp, text: string, at: number): string | undefined {
  re.lastIndex = at;
  return re.exec(text)?.[0];
}

/** Tokens of the whole code, in order; concatenating their text gives the code back exactly. */
export function tokenize(code: string, language: string | undefined): Token[] {
  const spec = LANGUAGES[languageOf(language)]!;
  const tokens: Token[] = [];
  const push = (text: string, kind: TokenKind) => {
    const last = tokens.at(-1);
    if (last && last.kind === kind) last.text += text;
    else tokens.push({ text, kind });
  };
  let i = 0;
  while (i < code.length) {
    const rest = (s: string) => code.startsWith(s, i);
    const line = spec.lineComment?.find(rest);
    if (line) {
      const end = code.indexOf("\n", i);
      const stop = end < 0 ? code.length : end;
      push(code.slice(i, stop), "comment");
      i = stop;
      continue;
    }
    if (spec.blockComment && rest(spec.blockComment[0])) {
      const end = code.indexOf(spec.blockComment[1], i + spec.blockComment[0].length);
      const stop = end < 0 ? code.length : end + spec.blockComment[1].length;
      push(code.slice(i, stop), "comment");
      i = stop;
      continue;
    }
    const quote = spec.quotes.find(rest);
    if (quote) {
      let j = i + quote.length;
      while (j < code.length && !code.startsWith(quote, j)) {
        // A single-character quote ends at the line's end when unterminated (a typo must not colour the rest).
        if (quote.length === 1 && quote !== "`" && code[j] === "\n") break;
        j += code[j] === "\\" ? 2 : 1;
      }
      const stop = Math.min(code.length, code.startsWith(quote, j) ? j + quote.length : j);
      push(code.slice(i, stop), "string");
      i = stop;
      continue;
    }
    const space = matchAt(SPACE, code, i);
    if (space) {
      push(space, "plain");
      i += space.length;
      continue;
    }
    const number = matchAt(NUMBER, code, i);
    if (number) {
      push(number, "number");
      i += number.length;
      continue;
    }
    const ident = matchAt(IDENT, code, i);
    if (ident) {
      const after = code.slice(i + ident.length).match(/^\s*\(/);
      const kind: TokenKind = spec.keywords.has(ident)
        ? "keyword"
        : after
          ? "function"
          : spec.capitalisedTypes && /^[A-Z][a-z0-9]/.test(ident)
            ? "type"
            : "plain";
      push(ident, kind);
      i += ident.length;
      continue;
    }
    push(code[i]!, /[{}()[\];,.:<>=+\-*/%&|^!?~@]/.test(code[i]!) ? "punctuation" : "plain");
    i += 1;
  }
  return tokens;
}

/** The tokens split at newlines: one array per line (empty lines are empty arrays). */
export function tokenLines(tokens: readonly Token[]): Token[][] {
  const lines: Token[][] = [[]];
  for (const token of tokens) {
    const parts = token.text.split("\n");
    parts.forEach((part, k) => {
      if (k > 0) lines.push([]);
      if (part) lines.at(-1)!.push({ text: part, kind: token.kind });
    });
  }
  return lines;
}

/** The first `count` characters of a token list (what is typed so far), without splitting surrogate pairs. */
export function sliceTokens(tokens: readonly Token[], count: number): Token[] {
  const out: Token[] = [];
  let left = count;
  for (const token of tokens) {
    if (left <= 0) break;
    if (token.text.length <= left) {
      out.push(token);
      left -= token.text.length;
    } else {
      let cut = left;
      const code = token.text.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
      if (cut > 0) out.push({ text: token.text.slice(0, cut), kind: token.kind });
      left = 0;
    }
  }
  return out;
}
